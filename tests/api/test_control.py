"""Chats, pause/resume and settings endpoints on the real app with a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import AUTH, TOKEN, assert_error
from twin import keys
from twin.config import Settings, load_settings
from twin.db.records import ReplyState
from twin.domain.models import PAUSED_FOREVER
from twin.services.settings import merge_patch

NOW = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


def control_settings(url: str, tmp_path, **sections: Any) -> Settings:
    """Settings of a real app on `url`: one API token, a secret key, an LLM that is never called
    (a closed loopback port), plus any section overrides (the config.toml defaults)."""
    values: dict[str, Any] = {
        "api": {"tokens": [TOKEN], "cors_origins": []},
        "storage": {"url": url},
        "security": {"secret_key": "control-test-secret-0123456789", "key_file": tmp_path / "k"},
        "llm": {"api_key": "sk-test-never-used", "base_url": "http://127.0.0.1:9/v1"},
    }
    values.update(sections)
    return load_settings(None, **values)


@pytest.fixture
async def client(make_client, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    settings = control_settings(url, tmp_path, twin={"takeover_minutes": 45, "owner_name": "Ann"})
    return await make_client(settings=settings, real_database=True)


def repo_of(client):
    return client.app[keys.DATABASE].repo


async def account_id(client, name: str = "default") -> int:
    return await client.app[keys.DIRECTORY].create(name)


async def events_of(client, type_: str) -> list:
    return [e for e in await repo_of(client).events_since(0, limit=1000) if e.type == type_]


async def add_chat(client, peer: int, *, account: str = "default", **fields):
    repo = repo_of(client)
    chat, _ = await repo.upsert_chat(await account_id(client, account), peer, title=f"peer {peer}")
    return await repo.update_chat(chat.id, **fields) if fields else chat


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/chats"),
        ("POST", "/chats/1/pause"),
        ("POST", "/chats/1/resume"),
        ("GET", "/settings"),
        ("PUT", "/settings"),
        ("POST", "/twin/enable"),
        ("POST", "/twin/disable"),
        ("GET", "/stats"),
        ("GET", "/events"),
    ],
)
async def test_control_endpoints_need_the_token(client, method, path) -> None:
    response = await client.request(method, path, json={})
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")


# --- chats --------------------------------------------------------------------------------------


async def test_chats_newest_activity_first_with_total_and_paging(client) -> None:
    await add_chat(client, 1, last_incoming_at=NOW - timedelta(hours=3))
    await add_chat(client, 2, last_outgoing_at=NOW - timedelta(hours=1), kind="group")
    await add_chat(client, 3, last_incoming_at=NOW - timedelta(hours=2),
                   last_owner_activity_at=NOW - timedelta(hours=2), username="carol",
                   is_contact=True)
    await add_chat(client, 99, account="other", last_incoming_at=NOW)

    response = await client.get("/chats", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)
    assert [chat["id"] for chat in body["chats"]] == [2, 3, 1]
    assert body["chats"][1] == {
        "id": 3, "kind": "private", "title": "peer 3", "username": "carol", "is_contact": True,
        "is_bot": False, "paused": False, "paused_until": None,
        "last_incoming_at": "2025-05-01T08:00:00Z", "last_outgoing_at": None,
        "last_owner_activity_at": "2025-05-01T08:00:00Z", "thread_id": None,
    }
    assert body["chats"][0]["kind"] == "group"

    page = await (await client.get("/chats?limit=1&offset=1", headers=AUTH)).json()
    assert [chat["id"] for chat in page["chats"]] == [3]
    assert page["total"] == 3
    other = await (await client.get("/chats?account=other", headers=AUTH)).json()
    assert [chat["id"] for chat in other["chats"]] == [99]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "limit=ten"])
async def test_chats_rejects_bad_paging(client, query) -> None:
    response = await client.get(f"/chats?{query}", headers=AUTH)
    assert response.status == 422
    assert_error(await response.json(), "validation_error")


# --- pause / resume -----------------------------------------------------------------------------


async def test_pause_unknown_chat_is_404(client) -> None:
    for action in ("pause", "resume"):
        response = await client.post(f"/chats/424242/{action}", json={}, headers=AUTH)
        assert response.status == 404
        error = assert_error(await response.json(), "not_found")
        assert "424242" in error["message"]
    assert await events_of(client, "chat.paused") == []


@pytest.mark.parametrize(
    "minutes", [0, -5, "30", True, 366 * 24 * 60 + 1, [5]], ids=repr
)
async def test_pause_rejects_bad_minutes(client, minutes) -> None:
    await add_chat(client, 7)
    response = await client.post("/chats/7/pause", json={"minutes": minutes}, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert {detail["field"] for detail in error["details"]} == {"minutes"}
    chat = await repo_of(client).get_chat_by_peer(await account_id(client), 7)
    assert chat.paused_until is None


async def test_pause_rejects_a_non_numeric_chat_id(client) -> None:
    response = await client.post("/chats/alice/pause", json={}, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert [detail["field"] for detail in error["details"]] == ["chat_id"]


async def test_pause_for_minutes_then_resume(client) -> None:
    chat = await add_chat(client, -1001234)  # a group's marked id
    before = datetime.now(UTC)
    response = await client.post("/chats/-1001234/pause", json={"minutes": 30}, headers=AUTH)
    after = datetime.now(UTC)
    assert response.status == 200
    body = await response.json()
    assert body["id"] == -1001234 and body["paused"] is True
    until = datetime.fromisoformat(body["paused_until"])
    assert before + timedelta(minutes=30) <= until <= after + timedelta(minutes=30)

    listed = (await (await client.get("/chats", headers=AUTH)).json())["chats"]
    assert [(c["id"], c["paused"]) for c in listed] == [(-1001234, True)]
    [event] = await events_of(client, "chat.paused")
    assert (event.account_id, event.chat_id) == (chat.account_id, chat.id)
    assert event.data == {
        "account": "default", "chat": -1001234, "until": until.isoformat(), "minutes": 30.0,
        "cancelled": 0,
    }

    response = await client.post("/chats/-1001234/resume", json={}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert (body["paused"], body["paused_until"]) == (False, None)
    listed = (await (await client.get("/chats", headers=AUTH)).json())["chats"]
    assert listed[0]["paused"] is False
    [event] = await events_of(client, "chat.resumed")
    assert event.data == {"account": "default", "chat": -1001234}
    assert event.chat_id == chat.id


async def test_pause_without_minutes_lasts_until_resumed(client) -> None:
    await add_chat(client, 5)
    for body in ({}, {"minutes": None}):
        response = await client.post("/chats/5/pause", json=body, headers=AUTH)
        assert response.status == 200
        out = await response.json()
        assert (out["paused"], out["paused_until"]) == (True, "9999-12-31T00:00:00Z")
    chat = await repo_of(client).get_chat_by_peer(await account_id(client), 5)
    assert chat.paused_until == PAUSED_FOREVER
    events = await events_of(client, "chat.paused")
    assert [e.data["until"] for e in events] == [None, None]


async def test_pause_is_per_account(client) -> None:
    await add_chat(client, 5, account="other")
    response = await client.post("/chats/5/pause", json={}, headers=AUTH)
    assert response.status == 404
    response = await client.post("/chats/5/pause", json={"account": "other"}, headers=AUTH)
    assert response.status == 200


async def test_pause_cancels_the_real_pipelines_pending_reply(client) -> None:
    # (Was a skip when the lifecycle registered no pipeline: exactly the regression it guards.)
    assert client.app[keys.SERVICES].get("pipeline") is not None
    repo = repo_of(client)
    chat = await add_chat(client, 9)
    message, _ = await repo.add_incoming(chat.account_id, chat.id, 1, date=NOW, text="hi?")
    far = datetime(2100, 1, 1, tzinfo=UTC)  # not due: the worker leaves it alone
    reply = await repo.create_reply(
        chat.account_id, chat.id, reply_at=far, message_ids=[message.id],
        decision={"action": "reply"},
    )
    response = await client.post("/chats/9/pause", json={}, headers=AUTH)
    assert response.status == 200
    cancelled = await repo.get_reply(reply.id)
    assert (cancelled.state, cancelled.reason) == (ReplyState.CANCELLED, "paused")
    [event] = await events_of(client, "chat.paused")
    assert event.data["cancelled"] == 1


# --- settings -----------------------------------------------------------------------------------


async def get_settings(client, account: str = "default") -> dict:
    response = await client.get(f"/settings?account={account}", headers=AUTH)
    assert response.status == 200
    return await response.json()


async def put_settings(client, body: dict, status: int = 200) -> dict:
    response = await client.put("/settings", json=body, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


async def test_get_settings_shows_config_defaults(client) -> None:
    body = await get_settings(client)
    settings = client.app[keys.SETTINGS]
    assert body["account"] == "default"
    assert body["overrides"] == {}
    assert set(body["effective"]) == {"twin", "schedule", "humanize"}
    assert body["effective"]["twin"] == settings.twin.model_dump(mode="json")
    assert body["effective"]["twin"]["takeover_minutes"] == 45.0  # from "config.toml"
    assert body["effective"]["schedule"] == settings.schedule.model_dump(mode="json")
    assert body["effective"]["humanize"] == settings.humanize.model_dump(mode="json")


async def test_put_settings_merges_partial_updates(client) -> None:
    defaults = (await get_settings(client))["effective"]
    body = await put_settings(client, {"twin": {"takeover_minutes": 5}})  # normalised
    assert body["overrides"] == {"twin": {"takeover_minutes": 5.0}}
    assert body["effective"]["twin"] == {**defaults["twin"], "takeover_minutes": 5.0}

    week = {"mon": ["09:00-18:00"], "tue": ["10:00-12:00", "13:00-17:00"]}
    body = await put_settings(
        client, {"schedule": {"timezone": "Europe/Berlin", "hours": week}}
    )
    assert body["overrides"] == {
        "twin": {"takeover_minutes": 5.0},
        "schedule": {"timezone": "Europe/Berlin", "hours": week},
    }
    assert body["effective"]["schedule"]["hours"] == week  # a table is replaced whole
    assert body["effective"]["schedule"]["outside_hours"] == defaults["schedule"]["outside_hours"]
    assert body["effective"]["twin"]["takeover_minutes"] == 5.0

    body = await put_settings(client, {"twin": {"takeover_minutes": None, "persona": "terse"}})
    assert body["overrides"]["twin"] == {"persona": "terse"}
    assert body["effective"]["twin"]["takeover_minutes"] == 45.0  # back to config.toml

    body = await put_settings(client, {"schedule": None, "humanize": {}})
    assert body["overrides"] == {"twin": {"persona": "terse"}}
    assert await get_settings(client) == body
    stored = await repo_of(client).get_settings(await account_id(client))
    assert stored == {"twin": {"persona": "terse"}}


async def test_settings_changes_reach_the_pipelines_view(client) -> None:
    from twin.services.policy import behaviour_of

    await put_settings(client, {"humanize": {"typing_cps": 9}, "twin": {"exclude": ["@spam"]}})
    stored = await repo_of(client).get_settings(await account_id(client))
    behaviour = behaviour_of(client.app[keys.SETTINGS], stored)
    assert behaviour.humanize.typing_cps == 9.0
    assert behaviour.twin.exclude == ["@spam"]
    assert behaviour.twin.owner_name == "Ann"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"schedule": {"hours": {"mon": ["25:00-26:00"]}}}, ["schedule.hours.mon"]),
        ({"schedule": {"hours": {"someday": ["09:00-10:00"]}}}, ["schedule.hours"]),
        ({"schedule": {"timezone": "Mars/Olympus"}}, ["schedule.timezone"]),
        ({"schedule": {"closed": [{"start": "2025-05-02", "end": "2025-05-01"}]}},
         ["schedule.closed.0"]),
        ({"twin": {"takeover_minutes": -1}}, ["twin.takeover_minutes"]),
        ({"twin": {"takeover_minutes": "soon"}}, ["twin.takeover_minutes"]),
        ({"twin": {"takeover_minutes": "5"}}, ["twin.takeover_minutes"]),  # a number, not text
        ({"twin": {"enabled": 0}}, ["twin.enabled"]),  # a boolean, not a number
        ({"twin": {"no_such_key": 1}}, ["twin.no_such_key"]),
        ({"twin": {"include": ["not a chat"]}}, ["twin.include"]),
        ({"humanize": {"read_delay_min": 50, "read_delay_max": 10}}, ["humanize.read_delay_min"]),
        ({"twin": {"voice_replies": "sometimes"}, "humanize": {"typing_jitter": 2}},
         ["twin.voice_replies", "humanize.typing_jitter"]),
        ({"twin": "on"}, ["twin"]),
        ({"llm": {"model": "x"}}, ["llm"]),  # only the behaviour sections, never secrets
    ],
)
async def test_put_settings_rejects_invalid_values_with_field_paths(client, body, fields) -> None:
    await put_settings(client, {"twin": {"persona": "kept"}})
    error = assert_error(await put_settings(client, body, status=422), "validation_error")
    assert [detail["field"] for detail in error["details"]] == fields
    assert all(detail["error"] for detail in error["details"])
    assert (await get_settings(client))["overrides"] == {"twin": {"persona": "kept"}}
    assert len(await events_of(client, "settings.changed")) == 1


async def test_settings_changed_event(client) -> None:
    await put_settings(client, {"twin": {"persona": "p", "facts": ["a"]}, "schedule": None})
    await put_settings(client, {"twin": {"persona": "p"}})  # no change: no event
    await put_settings(client, {"twin": None})
    events = await events_of(client, "settings.changed")
    assert [e.data for e in events] == [
        {"account": "default", "changed": {"twin": ["facts", "persona"]}},
        {"account": "default", "changed": {"twin": ["facts", "persona"]}},
    ]
    expected_id = await account_id(client)
    assert [e.account_id for e in events] == [expected_id, expected_id]


async def test_settings_are_per_account(client) -> None:
    await account_id(client, "other")
    await put_settings(client, {"account": "other", "twin": {"persona": "theirs"}})
    assert (await get_settings(client))["overrides"] == {}
    assert (await get_settings(client, "other"))["overrides"] == {"twin": {"persona": "theirs"}}


async def test_enable_and_disable_the_twin(client) -> None:
    await account_id(client, "other")
    response = await client.post("/twin/disable", json={}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["effective"]["twin"]["enabled"] is False
    assert body["overrides"] == {"twin": {"enabled": False}}
    assert (await get_settings(client))["effective"]["twin"]["enabled"] is False
    assert (await get_settings(client, "other"))["effective"]["twin"]["enabled"] is True

    response = await client.post("/twin/enable", json={"account": "default"}, headers=AUTH)
    body = await response.json()
    assert body["effective"]["twin"]["enabled"] is True
    assert body["overrides"] == {"twin": {"enabled": True}}
    changes = [e.data["changed"] for e in await events_of(client, "settings.changed")]
    assert changes == [{"twin": ["enabled"]}, {"twin": ["enabled"]}]


async def test_stored_overrides_broken_by_a_config_change_are_a_409(client) -> None:
    # e.g. config.toml raised read_delay_min above an override of read_delay_max
    await repo_of(client).put_settings(
        await account_id(client), {"humanize": {"read_delay_max": -3}}
    )
    response = await client.get("/settings", headers=AUTH)
    assert response.status == 409
    error = assert_error(await response.json(), "conflict")
    assert [d["field"] for d in error["details"]] == ["humanize.read_delay_max"]
    # …and they can be dropped
    body = await put_settings(client, {"humanize": None})
    assert body["overrides"] == {}


def test_merge_patch() -> None:
    stored = {"twin": {"a": 1, "b": 2}, "schedule": {"c": 3}}
    assert merge_patch(stored, {"twin": {"b": None, "d": 4}}) == {
        "twin": {"a": 1, "d": 4}, "schedule": {"c": 3}
    }
    assert merge_patch(stored, {"schedule": None}) == {"twin": {"a": 1, "b": 2}}
    assert merge_patch(stored, {"schedule": {"c": None}}) == {"twin": {"a": 1, "b": 2}}
    assert merge_patch({}, {"humanize": {}}) == {}
    assert stored == {"twin": {"a": 1, "b": 2}, "schedule": {"c": 3}}  # not mutated


async def test_openapi_documents_the_control_endpoints(client) -> None:
    document = await (await client.get("/openapi.json", headers=AUTH)).json()
    paths = document["paths"]
    for path, method in [
        ("/chats", "get"), ("/chats/{chat_id}/pause", "post"), ("/chats/{chat_id}/resume", "post"),
        ("/settings", "get"), ("/settings", "put"), ("/twin/enable", "post"),
        ("/twin/disable", "post"), ("/stats", "get"), ("/events", "get"),
    ]:
        assert method in paths[path], (path, method)
    events = paths["/events"]["get"]
    assert list(events["responses"]["200"]["content"]) == ["text/event-stream"]
    assert {p["name"] for p in events["parameters"]} == {
        "last_event_id", "types", "channel", "account"
    }
    assert {p["name"] for p in paths["/stats"]["get"]["parameters"]} == {"account", "days", "to"}
