"""One clock (issue 13.4): the times the repository stamps come from the injected Clock, as the
services' do — so a test that moves a ManualClock sees `finished_at`, `updated_at` and a
bubble's default date move with it (SQLite and PostgreSQL). The column defaults and onupdate
values (created_at, updated_at) read it too, through `twin.db.base.stamped_by`, which the
repository sets around each unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.db.conftest import make_settings
from twin.clock import ManualClock
from twin.db.base import UTCDateTime, stamped_by, utcnow
from twin.db.engine import database

LONG_AGO = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)


async def test_repository_stamps_follow_the_injected_clock(migrated_url: str, tmp_path) -> None:
    clock = ManualClock(LONG_AGO)
    async with database(make_settings(migrated_url, tmp_path), clock=clock) as db:
        repo = db.repo
        account = await repo.get_or_create_account("default")
        chat, _ = await repo.upsert_chat(account.id, 1001, kind="private", title="Alice")
        message, _ = await repo.add_incoming(account.id, chat.id, 7, date=LONG_AGO)
        reply = await repo.create_reply(
            account.id, chat.id, reply_at=LONG_AGO, message_ids=[message.id]
        )
        await clock.advance(90)
        bubble = await repo.add_outgoing(
            account.id, chat.id, text="hi", reply_id=reply.id, bubble_index=0, random_id=42
        )
        sent = await repo.update_reply(reply.id, state="sent")
        profile = await repo.put_style_profile(account.id, {"counters": {}})

    later = LONG_AGO + timedelta(seconds=90)
    assert sent.finished_at == later
    assert bubble.date == later
    assert profile.updated_at == later


# Every column the storage stamps (column defaults and onupdate values included).
STAMPED = {
    "accounts": ("created_at", "updated_at"),
    "entities": ("updated_at",),
    "chats": ("created_at", "updated_at"),
    "replies": ("created_at", "updated_at", "finished_at"),
    "messages": ("created_at", "updated_at"),
    "account_settings": ("updated_at",),
    "twin_styles": ("updated_at",),
    "twins": ("created_at", "updated_at"),
    "events": ("created_at",),
}


async def _stamps(repo) -> dict[str, list[tuple]]:
    """Every stamped column of every row, read back through the repository's runner."""

    def work(connection) -> dict[str, list[tuple]]:
        tables = sa.MetaData()
        tables.reflect(connection, only=list(STAMPED))
        stamps = {}
        for name, columns in STAMPED.items():
            table = tables.tables[name]
            query = sa.select(*(sa.type_coerce(table.c[c], UTCDateTime()) for c in columns))
            stamps[name] = [tuple(row) for row in connection.execute(query)]
        return stamps

    return await repo._read(work)


async def test_every_timestamp_the_storage_writes_is_the_clocks(
    migrated_url: str, tmp_path
) -> None:
    """Column defaults (created_at, updated_at, an event's created_at) and onupdate values too,
    on the thread's path, the event loop's lean path and PostgreSQL's: with the clock set to a
    fixed past time, every stamp written is that time, and an update stamps the new one."""
    clock = ManualClock(LONG_AGO)
    later = LONG_AGO + timedelta(hours=1)
    async with database(make_settings(migrated_url, tmp_path), clock=clock) as db:
        repo = db.repo
        account = await repo.get_or_create_account("default")
        await repo.upsert_entities(account.id, [{"entity_id": 5, "username": "bob"}])
        chat, _ = await repo.upsert_chat(account.id, 1001, kind="private", title="Alice")
        message, _ = await repo.add_incoming(account.id, chat.id, 7, date=LONG_AGO)
        reply = await repo.create_reply(
            account.id, chat.id, reply_at=LONG_AGO, message_ids=[message.id]
        )
        await repo.put_settings(account.id, {"twin": {"on": True}})
        await repo.put_style_profile(account.id, {"counters": {}})
        await repo.append_event("x.created", {}, account_id=account.id)

        def created_inline(tx):
            other, _ = tx.upsert_chat(account.id, 1002, kind="private", title="Bob")
            incoming, _ = tx.add_incoming(account.id, other.id, 8, date=LONG_AGO)
            tx.create_reply(account.id, other.id, reply_at=LONG_AGO, message_ids=[incoming.id])
            tx.append_event("x.inline", {}, account_id=account.id, chat_id=other.id)

        await repo.transaction(created_inline)
        first = await _stamps(repo)
        assert all(
            stamp in (LONG_AGO, None) for rows in first.values() for row in rows for stamp in row
        ), first
        assert all(rows for rows in first.values())

        await clock.advance(to=later)
        updated_account = await repo.update_account("default", username="me")
        await repo.upsert_entities(account.id, [{"entity_id": 5, "username": "bobby"}])
        await repo.set_paused(account.id, 1001, None)
        await repo.put_settings(account.id, {"twin": {"on": False}})
        await repo.put_style_profile(account.id, {"counters": {"a": 1}})

        def updated_inline(tx):
            tx.update_message(message.id, state_reason="seen")
            tx.update_reply(reply.id, state="sent")
            tx.append_event("x.updated", {}, account_id=account.id)

        await repo.transaction(updated_inline)
        stamps = await _stamps(repo)

    assert updated_account.updated_at == later
    assert stamps["accounts"] == [(LONG_AGO, later)]
    assert stamps["entities"] == [(later,)]
    assert sorted(stamps["chats"]) == [(LONG_AGO, LONG_AGO), (LONG_AGO, later)]
    assert sorted(stamps["replies"], key=str) == sorted(
        [(LONG_AGO, later, later), (LONG_AGO, LONG_AGO, None)], key=str
    )
    assert sorted(stamps["messages"]) == [(LONG_AGO, LONG_AGO), (LONG_AGO, later)]
    assert stamps["account_settings"] == [(later,)]
    assert stamps["twin_styles"] == [(later,)]
    assert sorted(stamps["events"]) == [(LONG_AGO,), (LONG_AGO,), (later,)]


async def test_outside_a_unit_of_work_defaults_take_the_system_time() -> None:
    before = datetime.now(UTC)
    assert before <= utcnow() <= datetime.now(UTC)
    token = stamped_by.set(ManualClock(LONG_AGO))
    try:
        assert utcnow() == LONG_AGO
    finally:
        stamped_by.reset(token)
