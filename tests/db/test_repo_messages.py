"""Messages: idempotent intake (also under concurrency), outgoing bubbles, history, sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from twin.db.records import Direction, MessageKind, ReplyState
from twin.db.repo import Repository
from twin.errors import Conflict, NotFound

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


async def test_intake_is_idempotent(repo: Repository, chat) -> None:
    first, created = await repo.add_incoming(
        chat.account_id, chat.id, 500, date=T0, text="hi", sender_id=2**40, reply_to_tg_id=499
    )
    assert created is True
    assert (first.direction, first.kind, first.state) == (
        Direction.INCOMING, MessageKind.TEXT, ReplyState.RECEIVED
    )
    assert first.date == T0 and first.sender_id == 2**40

    again, created = await repo.add_incoming(
        chat.account_id, chat.id, 500, date=T0, text="edited?"
    )
    assert created is False
    assert again == first  # the stored row is left untouched
    assert len(await repo.history(chat.account_id, chat.id)) == 1


async def test_concurrent_intake_stores_one_row(repo: Repository, chat) -> None:
    results = await asyncio.gather(
        *(repo.add_incoming(chat.account_id, chat.id, 777, date=T0, text="x") for _ in range(10))
    )
    assert sum(created for _, created in results) == 1
    assert len({message.id for message, _ in results}) == 1
    assert [m.tg_message_id for m in await repo.history(chat.account_id, chat.id)] == [777]


async def test_same_telegram_id_in_other_chat_is_another_message(repo: Repository, chat) -> None:
    other, _ = await repo.upsert_chat(chat.account_id, 2002)
    _, created_a = await repo.add_incoming(chat.account_id, chat.id, 1, date=T0)
    _, created_b = await repo.add_incoming(chat.account_id, other.id, 1, date=T0)
    assert created_a and created_b


async def test_voice_message_and_owner_outgoing(repo: Repository, chat) -> None:
    voice, _ = await repo.add_incoming(
        chat.account_id, chat.id, 10, date=T0, kind="voice", duration=3.5
    )
    assert voice.kind is MessageKind.VOICE and voice.duration == 3.5
    voice = await repo.update_message(voice.id, transcript="hello there")
    assert voice.transcript == "hello there"

    owner, _ = await repo.add_incoming(
        chat.account_id, chat.id, 11, date=T0, text="typed on phone", direction="outgoing"
    )
    assert owner.direction is Direction.OUTGOING and owner.state is ReplyState.SENT


async def test_outgoing_bubble_lifecycle(repo: Repository, chat) -> None:
    bubble = await repo.add_outgoing(
        chat.account_id, chat.id, text="part one", bubble_index=0, state="sending"
    )
    assert bubble.tg_message_id is None and bubble.state is ReplyState.SENDING
    bubble = await repo.set_random_id(bubble.id, -(2**63))
    assert await repo.get_message_by_random_id(chat.account_id, -(2**63)) == bubble

    other = await repo.add_outgoing(chat.account_id, chat.id, text="part two", bubble_index=1)
    with pytest.raises(Conflict):
        await repo.set_random_id(other.id, -(2**63))
    with pytest.raises(Conflict):
        await repo.add_outgoing(chat.account_id, chat.id, text="dup", random_id=-(2**63))

    sent_at = T0 + timedelta(seconds=5)
    sent = await repo.mark_sent(bubble.id, 9001, date=sent_at)
    assert (sent.tg_message_id, sent.state, sent.date) == (9001, ReplyState.SENT, sent_at)
    assert await repo.get_message_by_tg(chat.account_id, chat.id, 9001) == sent

    # Intake seeing the twin's own message again does not duplicate it.
    seen, created = await repo.add_incoming(
        chat.account_id, chat.id, 9001, date=sent_at, direction="outgoing"
    )
    assert created is False and seen.id == sent.id
    with pytest.raises(Conflict):
        await repo.mark_sent(other.id, 9001)

    skipped = await repo.set_message_state(other.id, "cancelled", "owner_took_over")
    assert (skipped.state, skipped.state_reason) == (ReplyState.CANCELLED, "owner_took_over")
    usage = await repo.update_message(
        sent.id, prompt_tokens=120, completion_tokens=30, cost_usd=0.000123
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (120, 30)
    assert usage.cost_usd == pytest.approx(0.000123)


async def test_message_lookups_and_updates_raise_not_found(repo: Repository, chat) -> None:
    with pytest.raises(NotFound):
        await repo.get_message(12345)
    with pytest.raises(NotFound):
        await repo.get_message_by_tg(chat.account_id, chat.id, 1)
    with pytest.raises(NotFound):
        await repo.set_message_state(12345, "skipped")
    with pytest.raises(TypeError):
        await repo.update_message(1, chat_id=2)
    with pytest.raises(ValueError, match="bogus"):
        await repo.set_message_state(1, "bogus")


async def test_history_pages_newest_first(repo: Repository, chat) -> None:
    # Telegram order is by date; ties (same second) fall back to insertion order.
    dates = [T0 + timedelta(minutes=m) for m in (5, 1, 3, 3, 0, 4, 2)]
    for tg_id, date in enumerate(dates, start=1):
        await repo.add_incoming(chat.account_id, chat.id, tg_id, date=date, text=str(tg_id))
    other, _ = await repo.upsert_chat(chat.account_id, 3003)
    await repo.add_incoming(chat.account_id, other.id, 1, date=T0 + timedelta(hours=1))

    everything = await repo.history(chat.account_id, chat.id, limit=100)
    assert [m.tg_message_id for m in everything] == [1, 6, 4, 3, 7, 2, 5]

    pages, before = [], None
    while True:
        page = await repo.history(chat.account_id, chat.id, limit=3, before_id=before)
        if not page:
            break
        pages.append([m.tg_message_id for m in page])
        before = page[-1].id
    assert pages == [[1, 6, 4], [3, 7, 2], [5]]
    with pytest.raises(NotFound):
        await repo.history(chat.account_id, chat.id, before_id=everything[0].id + 1000)


async def test_unrecorded_ids(repo: Repository, chat) -> None:
    for tg_id in (2, 4, 6):
        await repo.add_incoming(chat.account_id, chat.id, tg_id, date=T0)
    assert await repo.unrecorded_ids(chat.account_id, chat.id, [6, 5, 4, 3, 3, 2, 1]) == [5, 3, 1]
    assert await repo.unrecorded_ids(chat.account_id, chat.id, []) == []
    many = list(range(1, 1300))  # more than one IN (...) chunk
    missing = await repo.unrecorded_ids(chat.account_id, chat.id, many)
    assert missing == [i for i in many if i not in (2, 4, 6)]


async def test_deleting_an_account_cascades(db, chat) -> None:
    import sqlalchemy as sa

    await db.repo.add_incoming(chat.account_id, chat.id, 1, date=T0)
    async with db.engine.begin() as connection:
        await connection.execute(sa.text("DELETE FROM accounts"))
    async with db.engine.connect() as connection:
        counts = [
            (await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("chats", "messages")
        ]
    assert counts == [0, 0]
