"""Units of work (Repository.transaction): on a SQLite file they run the prepared statements
through twin.db.lean, elsewhere through SQLAlchemy. Both must store and return the same: every
record a unit returns equals what the regular repository path reads back."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from twin.db import lean
from twin.db.engine import _is_busy, _sqlite_pragmas
from twin.db.records import ReplyState
from twin.db.repo import Repository
from twin.db.tables import Event
from twin.domain.models import Direction, MessageKind
from twin.errors import Conflict

NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


async def test_a_unit_of_work_returns_what_is_stored(repo: Repository, account) -> None:
    sqlite_file = hasattr(repo._runner, "_inline_engine")

    def unit(tx):
        assert isinstance(tx._connection, lean.LeanConnection) is sqlite_file
        chat, created = tx.upsert_chat(
            account.id, 2002, kind="private", title="Bob", is_contact=True, is_bot=False
        )
        renamed, created_again = tx.upsert_chat(account.id, 2002, title="Bobby ✓")
        message, new = tx.add_incoming(
            account.id, chat.id, 7, date=NOW, text="hi ⟦there⟧ — ü", sender_id=2002
        )
        again, new_again = tx.add_incoming(account.id, chat.id, 7, date=NOW, text="changed")
        reply = tx.create_reply(
            account.id,
            chat.id,
            reply_at=NOW,
            message_ids=[message.id],
            decision={"explain": ["ok", "ü"], "delay_s": 1.5},
            lease_until=NOW + timedelta(minutes=15),
            message_state=ReplyState.SCHEDULED,
        )
        generating = tx.update_reply(
            reply.id, expect_state=(ReplyState.SCHEDULED,), state=ReplyState.GENERATING
        )
        with pytest.raises(Conflict):
            tx.update_reply(reply.id, expect_state=ReplyState.SENDING, state=ReplyState.SENT)
        bubble = tx.add_outgoing(
            account.id,
            chat.id,
            text="hello!",
            kind=MessageKind.TEXT,
            reply_id=reply.id,
            bubble_index=0,
            random_id=-(2**62),
            state=ReplyState.SENDING,
        )
        sent = tx.mark_sent(bubble.id, 99, date=NOW.replace(microsecond=0))
        finished = tx.update_reply(
            reply.id,
            expect_state=ReplyState.GENERATING,
            state=ReplyState.SENT,
            voice=False,
            flags={"intent": "chat"},
            prompt_tokens=10,
            completion_tokens=3,
            cost_usd=0.25,
        )
        tx.finish_reply_messages(reply.id, ReplyState.SENT, None)
        updated = tx.update_chat(
            chat.id, last_outgoing_at=NOW, paused_until=None, overrides={"twin": {"on": False}}
        )
        event_id = tx.append_event("x.y", {"k": [1, "v"]}, account_id=account.id, chat_id=chat.id)
        return {
            "flags": (created, created_again, new, new_again),
            "chat": updated,
            "renamed": renamed,
            "message": message,
            "again": again,
            "generating": generating,
            "sent": sent,
            "reply": finished,
            "event_id": event_id,
            "conversation": tx.conversation(account.id, chat.id, limit=10),
            "pending": tx.pending_reply(chat.id),
            "counted": tx.count_replies(account.id, NOW - timedelta(hours=1)),
            "counted_in_chat": tx.count_replies(
                account.id, NOW - timedelta(hours=1), chat_id=chat.id
            ),
            "settings": tx.get_settings(account.id),
            "style": tx.style_profile_version(account.id),
        }

    got = await repo.transaction(unit)
    assert got["flags"] == (True, False, True, False)
    assert got["renamed"].title == "Bobby ✓" and got["again"] == got["message"]
    chat = got["chat"]
    assert chat == await repo.get_chat(chat.id)
    assert chat.overrides == {"twin": {"on": False}} and chat.last_outgoing_at == NOW
    assert chat.is_contact is True and chat.is_bot is False
    assert got["reply"] == await repo.get_reply(got["reply"].id)
    assert got["reply"].decision == {"explain": ["ok", "ü"], "delay_s": 1.5}
    assert got["reply"].finished_at is not None and got["reply"].cost_usd == 0.25
    assert got["generating"].state is ReplyState.GENERATING
    assert got["generating"].lease_until == NOW + timedelta(minutes=15)
    stored = {m.id: m for m in await repo.reply_messages(got["reply"].id)}
    assert got["sent"] == stored[got["sent"].id]
    assert (got["sent"].tg_message_id, got["sent"].random_id) == (99, -(2**62))
    assert stored[got["message"].id].state is ReplyState.SENT
    assert stored[got["message"].id].text == "hi ⟦there⟧ — ü" and got["message"].date == NOW
    rows = got["conversation"]
    assert [(r.id, r.direction, r.state, r.date) for r in rows] == [  # newest first
        (got["message"].id, Direction.INCOMING, ReplyState.SENT, NOW),
        (got["sent"].id, Direction.OUTGOING, ReplyState.SENT, NOW.replace(microsecond=0)),
    ]
    assert got["pending"] is None
    assert (got["counted"], got["counted_in_chat"]) == (1, 1)
    assert (got["settings"], got["style"]) == ({}, None)
    events = await repo.events_since(got["event_id"] - 1)
    assert [(e.id, e.type, e.data) for e in events] == [(got["event_id"], "x.y", {"k": [1, "v"]})]


async def test_integrity_errors_surface_as_conflicts(repo: Repository, chat) -> None:
    def twice(tx):
        for _ in range(2):
            tx.add_outgoing(chat.account_id, chat.id, text="x", random_id=5)

    with pytest.raises(Conflict):
        await repo.transaction(twice)
    assert await repo.history(chat.account_id, chat.id) == []  # rolled back, nothing kept


# --- the lean connection itself, on a SQLite file --------------------------------------------

V = Event.__table__
INSERT = lean.prepared(sa.insert(V).returning(V.c.id, V.c.created_at))
BY_TYPE = lean.prepared(sa.select(V.c.id, V.c.data).where(V.c.type == sa.bindparam("_type")))


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lean.db'}")
    sa.event.listen(engine, "connect", _sqlite_pragmas(True, wait=False))
    Event.metadata.create_all(engine)  # tests only: the schema without migrations
    yield engine
    engine.dispose()


def test_prepared_statements_bypass_sqlalchemy_and_match_it(sqlite_engine) -> None:
    with sqlite_engine.begin() as connection:
        fast = lean.LeanConnection(connection)
        inserted = fast.execute(INSERT, {"type": "a", "data": {"n": 1}})
        assert isinstance(inserted, lean.LeanResult)
        row = inserted.one()
        assert row.id == row[0] == row._mapping["id"] and row.created_at.tzinfo is UTC
        unprepared = fast.execute(sa.select(V.c.id, V.c.data, V.c.created_at))
        assert not isinstance(unprepared, lean.LeanResult)
        assert [tuple(r) for r in unprepared] == [(row.id, {"n": 1}, row.created_at)]
        assert fast.execute(BY_TYPE, {"_type": "a"}).all() == [(row.id, {"n": 1})]
        result = fast.execute(BY_TYPE, {"_type": "none"})
        assert result.first() is None and result.scalar() is None
        assert result.one_or_none() is None and result.scalar_one_or_none() is None
        with pytest.raises(sa.exc.NoResultFound):
            fast.execute(BY_TYPE, {"_type": "none"}).one()
        fast.execute(INSERT, {"type": "a", "data": None})
        with pytest.raises(sa.exc.MultipleResultsFound):
            fast.execute(BY_TYPE, {"_type": "a"}).one()
        assert fast.execute(BY_TYPE, {"_type": "a"}).scalars().all() == [row.id, row.id + 1]


def test_driver_errors_become_sqlalchemy_errors(sqlite_engine, tmp_path) -> None:
    with sqlite_engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        lean.LeanConnection(connection).execute(INSERT, {"type": None, "data": {}})
    other = sqlite3.connect(tmp_path / "lean.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with sqlite_engine.begin() as connection, pytest.raises(sa.exc.OperationalError) as busy:
            lean.LeanConnection(connection).execute(INSERT, {"type": "b", "data": {}})
        assert _is_busy(busy.value)  # so the runner retries the unit where it may wait
    finally:
        other.execute("ROLLBACK")
        other.close()
