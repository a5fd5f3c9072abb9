"""/twins and PUT /accounts/{name} over real HTTP on SQLite and PostgreSQL (issue 14, item 1)."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH
from tests.api.test_control import control_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys


@pytest.fixture
async def client(make_client, engine_url, tmp_path):  # noqa: F811
    settings = control_settings(
        engine_url,
        tmp_path,
        twin={"owner_name": "Ann"},
        # [tts] speaks with OpenAI; a second account lets twins name ElevenLabs voices
        tts={"provider": "openai", "api_key": "sk-tts", "elevenlabs": {"api_key": "el-key"}},
    )
    return await make_client(settings=settings, real_database=True)


async def test_twins_over_http(client) -> None:
    listed = await (await client.get("/twins", headers=AUTH)).json()
    assert [t["name"] for t in listed["twins"]] == ["default"]
    assert listed["twins"][0]["effective"]["twin"]["owner_name"] == "Ann"  # config.toml's

    body = {
        "name": "sales",
        "twin": {"owner_name": "Sally", "facts": ["Open 9-18"], "disclose_assistant": True},
        "schedule": {"timezone": "Europe/Berlin"},
        "voice": {"provider": "elevenlabs", "voice_id": "v-42"},
    }
    created = await client.post("/twins", json=body, headers=AUTH)
    assert created.status == 201, await created.text()
    sales = await created.json()
    assert sales["overrides"] == {
        "twin": {"owner_name": "Sally", "facts": ["Open 9-18"], "disclose_assistant": True},
        "schedule": {"timezone": "Europe/Berlin"},
    }
    assert sales["voice"] == {"provider": "elevenlabs", "voice_id": "v-42"}
    assert sales["effective"]["twin"]["owner_name"] == "Sally"
    assert sales["effective"]["humanize"]["enabled"] is True  # config.toml's, not overridden
    assert (await client.post("/twins", json=body, headers=AUTH)).status == 409

    no_voice = await client.post(
        "/twins", json={"name": "y", "voice": {"provider": "elevenlabs"}}, headers=AUTH
    )
    assert no_voice.status == 422  # an ElevenLabs voice other than [tts]'s names its voice id
    assert [d["field"] for d in (await no_voice.json())["error"]["details"]] == ["voice.voice_id"]

    invalid = await client.post(
        "/twins", json={"name": "x", "schedule": {"timezone": "Mars/Olympus"}}, headers=AUTH
    )
    assert invalid.status == 422
    assert [d["field"] for d in (await invalid.json())["error"]["details"]] == [
        "schedule.timezone"
    ]

    replaced = await client.put(
        "/twins/sales", json={"twin": {"owner_name": "Sara"}}, headers=AUTH
    )
    assert replaced.status == 200
    assert (await replaced.json())["overrides"] == {"twin": {"owner_name": "Sara"}}
    assert (await client.get("/twins/nobody", headers=AUTH)).status == 404

    await client.app[keys.DATABASE].repo.get_or_create_account("shop")
    linked = await client.put("/accounts/shop", json={"twin": "sales"}, headers=AUTH)
    assert await linked.json() == {"account": "shop", "twin": "sales"}
    assert (await client.put("/accounts/shop", json={"twin": "x"}, headers=AUTH)).status == 404
    assert (await client.put("/accounts/none", json={"twin": "sales"}, headers=AUTH)).status == 404
    accounts = await (await client.get("/accounts", headers=AUTH)).json()
    assert {a["name"]: a["twin"] for a in accounts["accounts"]} == {"shop": "sales"}
    assert (await (await client.get("/twins/sales", headers=AUTH)).json())["accounts"] == ["shop"]

    in_use = await client.delete("/twins/sales", headers=AUTH)
    assert in_use.status == 409
    assert (await in_use.json())["error"]["details"] == [{"field": "accounts", "error": "shop"}]
    assert (await client.delete("/twins/default", headers=AUTH)).status == 409
    await client.put("/accounts/shop", json={"twin": "default"}, headers=AUTH)
    assert (await client.delete("/twins/sales", headers=AUTH)).status == 204
    assert (await client.delete("/twins/sales", headers=AUTH)).status == 404
