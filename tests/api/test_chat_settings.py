"""Per-chat overrides: GET/PUT /chats/{id}/settings, layered over the account's settings."""

from __future__ import annotations

from tests.api.conftest import AUTH, assert_error
from tests.api.test_control import add_chat, client, events_of  # noqa: F401  (fixture)


async def test_chat_overrides_layer_over_account_settings(client) -> None:  # noqa: F811
    await add_chat(client, 4242)
    response = await client.put(
        "/settings",
        json={"twin": {"voice_replies": "mirror", "takeover_minutes": 10}},
        headers=AUTH,
    )
    assert response.status == 200

    response = await client.put(
        "/chats/4242/settings", json={"twin": {"voice_replies": "always"}}, headers=AUTH
    )
    body = await response.json()
    assert response.status == 200, body
    assert body["overrides"] == {"twin": {"voice_replies": "always"}}
    assert body["effective"]["twin"]["voice_replies"] == "always"  # the chat wins
    assert body["effective"]["twin"]["takeover_minutes"] == 10  # the account's still applies
    assert body["effective"]["twin"]["owner_name"] == "Ann"  # config.toml's too

    response = await client.get("/chats/4242/settings", headers=AUTH)
    assert (await response.json())["effective"]["twin"]["voice_replies"] == "always"
    assert len(await events_of(client, "chat.settings_changed")) == 1

    response = await client.put("/chats/4242/settings", json={"twin": None}, headers=AUTH)
    body = await response.json()
    assert body["overrides"] == {} and body["effective"]["twin"]["voice_replies"] == "mirror"


async def test_chat_settings_errors(client) -> None:  # noqa: F811
    await add_chat(client, 7)
    response = await client.put(
        "/chats/7/settings", json={"schedule": {"hours": {"mon": ["25:00-26:00"]}}}, headers=AUTH
    )
    body = await response.json()
    assert_error(body, "validation_error")
    assert body["error"]["details"][0]["field"] == "schedule.hours.mon"

    response = await client.get("/chats/999/settings", headers=AUTH)
    assert response.status == 404
    assert_error(await response.json(), "not_found")
