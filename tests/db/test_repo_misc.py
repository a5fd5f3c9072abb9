"""Per-account settings, style profiles, the event log and the health ping."""

from __future__ import annotations

import pytest

from twin.db.engine import create_engine, ping
from twin.db.repo import Repository
from twin.errors import Conflict


async def test_settings_round_trip(repo: Repository, account) -> None:
    assert await repo.get_settings(account.id) == {}
    data = {"twin": {"persona": "brief"}, "schedule": {"timezone": "Europe/Berlin"}}
    assert await repo.put_settings(account.id, data) == data
    assert await repo.get_settings(account.id) == data
    await repo.put_settings(account.id, {"humanize": {"enabled": False}})
    assert await repo.get_settings(account.id) == {"humanize": {"enabled": False}}
    with pytest.raises(Conflict):
        await repo.put_settings(account.id + 100, {})


async def test_style_profile_round_trip(repo: Repository, account) -> None:
    assert await repo.get_style_profile(account.id) is None
    partial = await repo.put_style_profile(
        account.id, {"emoji_rate": 0.1}, cursor={"chat": 5, "offset_id": 1200}
    )
    assert partial.cursor == {"chat": 5, "offset_id": 1200}
    done = await repo.put_style_profile(account.id, {"emoji_rate": 0.2, "samples": ["ok!"]})
    assert done.cursor is None and done.data["samples"] == ["ok!"]
    assert await repo.get_style_profile(account.id) == done


async def test_events_since(repo: Repository, account, chat) -> None:
    assert await repo.last_event_id() == 0
    first = await repo.append_event("message.received", {"tg_id": 1}, account_id=account.id,
                                    chat_id=chat.id)
    second = await repo.append_event("daemon.started")
    third = await repo.append_event("reply.sent", {"text": "hi"}, account_id=account.id)
    assert first < second < third
    assert await repo.last_event_id() == third

    events = await repo.events_since(0)
    assert [(e.id, e.type) for e in events] == [
        (first, "message.received"), (second, "daemon.started"), (third, "reply.sent")
    ]
    assert events[0].data == {"tg_id": 1} and events[0].chat_id == chat.id
    assert events[1].data == {} and events[1].account_id is None
    assert [e.id for e in await repo.events_since(first)] == [second, third]
    assert [e.id for e in await repo.events_since(0, limit=1)] == [first]
    assert [e.id for e in await repo.events_since(0, account_id=account.id)] == [first, third]


async def test_ping(db) -> None:
    assert await db.ping() is True


async def test_ping_unreachable_database() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        assert await ping(engine) is False
    finally:
        await engine.dispose()
