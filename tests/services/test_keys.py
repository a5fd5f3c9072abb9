"""twin.services.keys on real storage (SQLite and PostgreSQL): a hot key costs no database
round trip, a revocation made by another process is honoured within CACHE_SECONDS, and
`last_used_at` is written at most once a minute."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.db.conftest import (  # noqa: F401  (fixtures)
    backend_url,
    db,
    engine_url,
    migrated_url,
    postgres_url,
    repo,
)
from tests.fakes import WatchedClock
from tests.services.conftest import clock  # noqa: F401  (a fixture)
from twin.db.engine import Database
from twin.errors import InvalidSettings, NotFound
from twin.services import keys as keys_service
from twin.services.events import EventLog
from twin.services.keys import CACHE_SECONDS, ApiKeys, hash_key


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements any engine runs meanwhile (SQLAlchemy's own hook; on SQLite the
    repository runs on engines of its own, so listen on all of them)."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture
def api_keys(db: Database, clock: WatchedClock) -> ApiKeys:  # noqa: F811
    return ApiKeys(db.repo, EventLog(db.repo), clock)


async def test_a_hot_key_costs_no_database_round_trip(
    db: Database, api_keys: ApiKeys  # noqa: F811
) -> None:
    created = await api_keys.create("n8n", ["chat"])
    with statements() as seen:
        first = await api_keys.who(created.key, 0.0)
        assert first is not None and first.scopes == {"chat"} and first.key_id is not None
        looked_up = len(seen)
        assert looked_up >= 2  # the lookup and the first last_used_at
        for tick in range(200):
            assert await api_keys.who(created.key, tick * 0.01) == first
        assert len(seen) == looked_up


async def test_last_used_is_written_at_most_once_a_minute(
    db: Database, api_keys: ApiKeys, clock: WatchedClock  # noqa: F811
) -> None:
    created = await api_keys.create("n8n", ["chat"])
    start = clock.now()
    await api_keys.who(created.key, 0.0)
    [row] = await db.repo.list_keys()
    assert row.last_used_at == start
    await clock.advance(59)
    await api_keys.who(created.key, 1.0)
    [row] = await db.repo.list_keys()
    assert row.last_used_at == start
    await clock.advance(1)
    await api_keys.who(created.key, 2.0)
    [row] = await db.repo.list_keys()
    assert row.last_used_at == clock.now()


async def test_revocations_here_at_once_elsewhere_within_the_cache_time(
    db: Database, api_keys: ApiKeys, clock: WatchedClock  # noqa: F811
) -> None:
    here = await api_keys.create("here", ["chat"])
    elsewhere = await api_keys.create("elsewhere", ["chat"])
    assert await api_keys.who(here.key, 0.0) is not None
    assert await api_keys.who(elsewhere.key, 0.0) is not None
    await api_keys.revoke("here")
    assert await api_keys.who(here.key, 0.1) is None
    # Another process (the CLI, a second daemon) revokes through the database alone.
    other = ApiKeys(db.repo, EventLog(db.repo), clock)
    await other.revoke("elsewhere")
    assert await api_keys.who(elsewhere.key, CACHE_SECONDS - 0.1) is not None
    assert await api_keys.who(elsewhere.key, CACHE_SECONDS + 0.1) is None


async def test_bindings_and_events_never_hold_the_key(
    db: Database, api_keys: ApiKeys  # noqa: F811
) -> None:
    await db.repo.get_or_create_account("shop")
    created = await api_keys.create("widget", ["chat", "chat"], account="shop", twin="sales")
    assert created.key.startswith("twin_") and len(created.key) == 48
    assert created.record.hash == hash_key(created.key) != created.key
    assert created.record.scopes == ["chat"]
    who = await api_keys.who(created.key, 0.0)
    assert who is not None and (who.account, who.twin) == ("shop", "sales")
    assert who.sees("shop") and not who.sees("home")
    assert who.allows("chat") and not who.allows("admin") and not who.allows("webhook:talkme")
    await api_keys.revoke("widget")
    events = await db.repo.events_since(0, limit=100)
    assert [e.type for e in events] == ["key.created", "key.revoked"]
    assert all(created.key not in str(e.data) and created.record.hash not in str(e.data)
               for e in events)
    assert events[0].data["prefix"] == created.key[:12]


async def test_what_is_refused(db: Database, api_keys: ApiKeys) -> None:  # noqa: F811
    with pytest.raises(InvalidSettings) as bad:
        await api_keys.create("x" * 65, ["root", "chat"])
    assert [field for field, _ in bad.value.problems] == ["name", "scopes"]
    with pytest.raises(InvalidSettings):
        await api_keys.create("n8n", [])
    with pytest.raises(NotFound):
        await api_keys.create("n8n", ["chat"], account="nobody")
    with pytest.raises(NotFound):
        await api_keys.revoke("nobody")
    assert await db.repo.list_keys() == []
    assert await api_keys.who("twin_" + "x" * 43, 0.0) is None


async def test_made_up_keys_cannot_push_a_hot_key_out_of_the_cache(
    api_keys: ApiKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_service, "CACHE_LIMIT", 4)
    hot = await api_keys.create("hot", ["chat"])
    assert await api_keys.who(hot.key, 0.0) is not None
    for n in range(20):  # a flood of unknown keys, each looked up once
        assert await api_keys.who(f"twin_{n:043d}", 1.0) is None
    with statements() as seen:
        assert await api_keys.who(hot.key, 2.0) is not None
    assert seen == []
