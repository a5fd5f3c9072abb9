"""Reply jobs: creation, linking, guarded updates, leasing and concurrent claims."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from twin.db.records import ReplyState
from twin.db.repo import Repository
from twin.errors import Conflict, NotFound

NOW = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


async def _incoming(repo: Repository, chat, *tg_ids: int) -> list[int]:
    ids = []
    for tg_id in tg_ids:
        message, _ = await repo.add_incoming(chat.account_id, chat.id, tg_id, date=NOW)
        ids.append(message.id)
    return ids


async def test_create_and_link_messages(repo: Repository, chat) -> None:
    ids = await _incoming(repo, chat, 1, 2, 3)
    reply = await repo.create_reply(
        chat.account_id, chat.id, reply_at=NOW, message_ids=ids[:2],
        decision={"explain": ["working hours"], "read_delay": 4.2},
        flags={"intent": "question"}, voice=True,
    )
    assert reply.state is ReplyState.SCHEDULED
    assert (reply.attempts, reply.lease_until, reply.finished_at) == (0, None, None)
    assert reply.decision == {"explain": ["working hours"], "read_delay": 4.2}
    assert reply.voice is True
    assert [m.id for m in await repo.reply_messages(reply.id)] == ids[:2]

    await repo.attach_messages(reply.id, [ids[2]])
    assert [m.id for m in await repo.reply_messages(reply.id)] == ids
    assert await repo.get_reply(reply.id) == reply
    assert await repo.pending_reply(chat.id) == reply


async def test_linking_foreign_messages_fails_atomically(repo: Repository, chat) -> None:
    other, _ = await repo.upsert_chat(chat.account_id, 4040)
    mine = await _incoming(repo, chat, 1)
    theirs = await _incoming(repo, other, 1)
    with pytest.raises(NotFound):
        await repo.create_reply(
            chat.account_id, chat.id, reply_at=NOW, message_ids=mine + theirs
        )
    assert await repo.unfinished_replies() == []
    assert (await repo.get_message(mine[0])).reply_id is None
    with pytest.raises(NotFound):
        await repo.attach_messages(999, mine)


async def test_update_reply_and_finish(repo: Repository, chat) -> None:
    reply = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW)
    generating = await repo.update_reply(
        reply.id, expect_state="scheduled", state="generating", lease_until=NOW
    )
    assert generating.state is ReplyState.GENERATING
    with pytest.raises(Conflict, match="generating"):
        await repo.update_reply(reply.id, expect_state=["scheduled"], state="generating")

    sending = await repo.update_reply(
        reply.id, state=ReplyState.SENDING, text="sure, see you at 5",
        flags={"requires_human": False, "confidence": 0.9},
        prompt_tokens=800, completion_tokens=20, cost_usd=0.0004,
    )
    assert sending.text == "sure, see you at 5" and sending.flags["confidence"] == 0.9
    sent = await repo.update_reply(reply.id, state="sent")
    assert sent.finished_at is not None and sent.lease_until is None
    assert await repo.unfinished_replies() == []
    assert await repo.pending_reply(chat.id) is None

    with pytest.raises(NotFound):
        await repo.update_reply(reply.id + 100, state="sent")
    with pytest.raises(TypeError):
        await repo.update_reply(reply.id, chat_id=1)


async def test_claim_respects_due_time_backoff_and_lease(repo: Repository, chat) -> None:
    due = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW - timedelta(seconds=5))
    later = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW + timedelta(minutes=1))
    backing_off = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW - timedelta(1))
    await repo.update_reply(backing_off.id, next_attempt_at=NOW + timedelta(minutes=10))
    done = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW - timedelta(2))
    await repo.update_reply(done.id, state="skipped", reason="paused")

    claimed = await repo.claim_due_replies(NOW, lease_seconds=60, limit=10)
    assert [r.id for r in claimed] == [due.id]
    assert claimed[0].lease_until == NOW + timedelta(seconds=60)
    assert claimed[0].attempts == 1

    # Leased: nobody else gets it until the lease runs out (a crashed worker).
    assert await repo.claim_due_replies(NOW + timedelta(seconds=59), 60) == []
    reclaimed = await repo.claim_due_replies(NOW + timedelta(seconds=61), 3600)
    assert {r.id for r in reclaimed} == {due.id, later.id}
    assert next(r for r in reclaimed if r.id == due.id).attempts == 2

    assert [r.id for r in await repo.claim_due_replies(NOW + timedelta(minutes=11), 60)] == [
        backing_off.id
    ]
    assert {r.id for r in await repo.unfinished_replies(chat.account_id)} == {
        due.id, later.id, backing_off.id
    }


async def test_claim_limit_and_order(repo: Repository, chat) -> None:
    replies = [
        await repo.create_reply(chat.account_id, chat.id, reply_at=NOW - timedelta(seconds=s))
        for s in (1, 30, 10, 20)
    ]
    claimed = await repo.claim_due_replies(NOW, 60, limit=2)
    assert [r.id for r in claimed] == [replies[1].id, replies[3].id]


async def test_concurrent_claimers_never_share_a_job(repo: Repository, chat) -> None:
    created = {
        (await repo.create_reply(chat.account_id, chat.id, reply_at=NOW - timedelta(seconds=i))).id
        for i in range(30)
    }
    batches = await asyncio.gather(
        *(repo.claim_due_replies(NOW, lease_seconds=300, limit=4) for _ in range(10))
    )
    claimed = [reply.id for batch in batches for reply in batch]
    assert len(claimed) == len(set(claimed))  # no job handed out twice
    assert set(claimed) <= created
    assert len(claimed) >= 4
    rest = await repo.claim_due_replies(NOW, lease_seconds=300, limit=100)
    assert set(claimed) | {r.id for r in rest} == created
    assert not set(claimed) & {r.id for r in rest}


async def test_deleting_a_reply_unlinks_messages(db, chat) -> None:
    import sqlalchemy as sa

    ids = await _incoming(db.repo, chat, 1)
    reply = await db.repo.create_reply(chat.account_id, chat.id, reply_at=NOW, message_ids=ids)
    async with db.engine.begin() as connection:
        await connection.execute(sa.text("DELETE FROM replies WHERE id = :id"), {"id": reply.id})
    assert (await db.repo.get_message(ids[0])).reply_id is None


async def test_rate_limit_window_counts_what_the_policy_counts(repo: Repository, chat) -> None:
    """count_replies / reply_times: replies sent (by finished_at) or still on their way (by
    reply_at) since `since`, per account or per chat; skipped, cancelled and failed ones never."""
    other, _ = await repo.upsert_chat(chat.account_id, 4041)
    since = datetime.now(UTC) - timedelta(hours=1)

    async def reply(in_chat, state: ReplyState, reply_at: datetime) -> None:
        job = await repo.create_reply(chat.account_id, in_chat.id, reply_at=reply_at)
        if state is not ReplyState.SCHEDULED:
            await repo.update_reply(job.id, state=state)  # terminal: finished now

    recent, old = since + timedelta(minutes=30), since - timedelta(minutes=5)
    await reply(chat, ReplyState.SENT, old)  # scheduled long ago, finished now: counts
    await reply(chat, ReplyState.SENT, recent)
    await reply(chat, ReplyState.SCHEDULED, recent)  # on its way: counts
    await reply(chat, ReplyState.SCHEDULED, old)  # overdue, never sent: does not
    await reply(chat, ReplyState.GENERATING, recent)
    await reply(other, ReplyState.SENDING, recent)
    for state in (ReplyState.SKIPPED, ReplyState.CANCELLED, ReplyState.FAILED):
        await reply(chat, state, recent)
    # sent before the window: finished_at set in the past
    gone = await repo.create_reply(chat.account_id, chat.id, reply_at=old)
    await repo.update_reply(gone.id, state=ReplyState.SENT, finished_at=old)

    assert await repo.count_replies(chat.account_id, since) == 5
    assert await repo.count_replies(chat.account_id, since, chat_id=chat.id) == 4
    assert await repo.count_replies(chat.account_id, since, chat_id=other.id) == 1
    times = await repo.reply_times(chat.account_id, since)
    assert len(times) == 5 and all(at >= since for at in times)
    assert len(await repo.reply_times(chat.account_id, since, chat_id=chat.id)) == 4


async def test_a_reply_created_terminal_is_finished(repo: Repository, chat) -> None:
    skipped = await repo.create_reply(
        chat.account_id, chat.id, reply_at=NOW, state=ReplyState.SKIPPED, reason="bot"
    )
    assert skipped.finished_at is not None
    scheduled = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW)
    assert scheduled.finished_at is None
