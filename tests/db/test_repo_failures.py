"""Failed replies: why they failed, finding the outage failures, re-queuing one (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.db.records import Direction, Failure, ReplyState
from twin.db.repo import Repository
from twin.errors import Conflict, NotFound, clip
from twin.services.replies import REASON_CHARS, failure_reason

NOW = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


async def _failed(
    repo: Repository,
    chat,
    tg_id: int,
    failure: Failure | None,
    *,
    date: datetime = NOW,
    reason: str = "LLMUnavailable: gave up after 5 attempts",
):
    """A reply to one new incoming message, claimed once and failed."""
    message, _ = await repo.add_incoming(chat.account_id, chat.id, tg_id, date=date)
    reply = await repo.create_reply(
        chat.account_id, chat.id, reply_at=date, message_ids=[message.id],
        message_state=ReplyState.SCHEDULED, lease_until=NOW,
    )
    fields = {"failure": failure.value} if failure is not None else {}
    failed = await repo.update_reply(reply.id, state=ReplyState.FAILED, reason=reason, **fields)
    await repo.finish_reply_messages(reply.id, ReplyState.FAILED, reason)
    return failed, message


async def test_a_failed_reply_records_why(repo: Repository, chat) -> None:
    outage, _ = await _failed(repo, chat, 1, Failure.OUTAGE)
    assert (outage.state, outage.failure, outage.finished_at is not None) == (
        ReplyState.FAILED, Failure.OUTAGE, True
    )
    assert (await repo.get_reply(outage.id)).failure is Failure.OUTAGE
    scheduled = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW)
    assert scheduled.failure is None
    with pytest.raises(Conflict):  # the CHECK constraint: only the known kinds
        await repo.update_reply(scheduled.id, failure="flaky")


async def test_a_failure_reason_fits_its_column(repo: Repository, chat) -> None:
    """The pipeline's stored reasons fit VARCHAR(64), which PostgreSQL enforces."""
    error = RuntimeError("Error code: 400 - " + "{'error': {'message': 'refused'}} " * 10)
    reason = clip(failure_reason(error), REASON_CHARS)
    assert len(failure_reason(error)) > 64 >= len(reason)
    failed, message = await _failed(repo, chat, 1, Failure.PERMANENT, reason=reason)
    assert failed.reason == reason
    assert (await repo.get_message(message.id)).state_reason == reason


async def test_outage_failures_oldest_first_with_their_newest_message(
    repo: Repository, chat
) -> None:
    other, _ = await repo.upsert_chat(chat.account_id, 4040)
    first, _ = await _failed(repo, chat, 1, Failure.OUTAGE, date=NOW - timedelta(hours=8))
    later, _ = await repo.add_incoming(chat.account_id, chat.id, 2, date=NOW)
    await repo.attach_messages(first.id, [later.id])  # a burst: its newest message counts
    await _failed(repo, chat, 3, Failure.PERMANENT)
    await _failed(repo, chat, 4, Failure.EXPIRED)
    await _failed(repo, chat, 5, None)  # failed before failures were recorded
    second, _ = await _failed(repo, other, 1, Failure.OUTAGE, date=NOW - timedelta(hours=1))
    active = await repo.create_reply(chat.account_id, chat.id, reply_at=NOW)
    await repo.update_reply(active.id, failure=Failure.OUTAGE.value)  # not failed: ignored

    owner_wrote = NOW - timedelta(minutes=5)
    await repo.update_chat(other.id, last_owner_activity_at=owner_wrote)

    found = await repo.outage_failures()
    assert [tuple(f[1:3]) for f in found] == [(NOW, None), (NOW - timedelta(hours=1), owner_wrote)]
    # a newer reply of the chat that answers (or will) supersedes the failure
    assert [f.later_reply_id for f in found] == [active.id, None]
    assert [f.reply.id for f in found] == [first.id, second.id]
    assert [f.reply.id for f in await repo.outage_failures(1)] == [first.id]
    assert [f.reply.id for f in await repo.outage_failures(chat_id=other.id)] == [second.id]


async def test_requeue_before_sending_schedules_it_afresh(repo: Repository, chat) -> None:
    failed, message = await _failed(repo, chat, 1, Failure.OUTAGE)
    # a bubble of an earlier generation, replaced before anything was sent
    stale = await repo.add_outgoing(
        chat.account_id, chat.id, text="old", reply_id=failed.id, bubble_index=0,
        random_id=11, state=ReplyState.CANCELLED,
    )
    await repo.update_message(stale.id, state_reason="regenerated")

    requeued = await repo.requeue_reply(failed.id, failures=[Failure.OUTAGE])
    assert requeued.state is ReplyState.SCHEDULED
    assert (requeued.failure, requeued.reason, requeued.attempts) == (None, None, 0)
    assert (requeued.finished_at, requeued.next_attempt_at, requeued.lease_until) == (
        None, None, None
    )
    reopened = await repo.get_message(message.id)
    assert (reopened.state, reopened.state_reason) == (ReplyState.SCHEDULED, None)
    assert (await repo.get_message(stale.id)).state is ReplyState.CANCELLED
    assert [r.id for r in await repo.claim_due_replies(NOW, 60)] == [failed.id]  # due at once
    assert await repo.outage_failures() == []


async def test_requeue_while_sending_resumes_the_stored_bubbles(repo: Repository, chat) -> None:
    message, _ = await repo.add_incoming(chat.account_id, chat.id, 1, date=NOW)
    reply = await repo.create_reply(
        chat.account_id, chat.id, reply_at=NOW, message_ids=[message.id],
        message_state=ReplyState.SCHEDULED,
    )
    await repo.update_reply(reply.id, state=ReplyState.SENDING, text="one two")
    bubbles = [
        await repo.add_outgoing(
            chat.account_id, chat.id, text=text, reply_id=reply.id, bubble_index=i,
            random_id=100 + i,
        )
        for i, text in enumerate(("one", "two"))
    ]
    await repo.mark_sent(bubbles[0].id, 900)
    await repo.update_reply(
        reply.id, state=ReplyState.FAILED, reason="RateLimited", failure=Failure.OUTAGE.value,
        attempts=5,
    )
    await repo.finish_reply_messages(reply.id, ReplyState.FAILED, "RateLimited")
    assert (await repo.get_message(bubbles[1].id)).state is ReplyState.CANCELLED

    requeued = await repo.requeue_reply(reply.id, failures=[Failure.OUTAGE], attempts=4)
    assert (requeued.state, requeued.attempts, requeued.text) == (ReplyState.SENDING, 4, "one two")
    states = {
        m.id: (m.state, m.state_reason, m.random_id, m.tg_message_id)
        for m in await repo.reply_messages(reply.id)
    }
    assert states == {
        message.id: (ReplyState.SCHEDULED, None, None, 1),
        bubbles[0].id: (ReplyState.SENT, None, 100, 900),  # never sent again
        bubbles[1].id: (ReplyState.SENDING, None, 101, None),  # same random_id
    }


async def test_requeue_is_guarded(repo: Repository, chat) -> None:
    permanent, message = await _failed(repo, chat, 1, Failure.PERMANENT)
    with pytest.raises(Conflict, match="permanent"):
        await repo.requeue_reply(permanent.id, failures=[Failure.OUTAGE])
    assert await repo.get_reply(permanent.id) == permanent  # nothing changed
    assert (await repo.get_message(message.id)).state is ReplyState.FAILED

    unknown, _ = await _failed(repo, chat, 2, None)
    assert (await repo.requeue_reply(unknown.id, failures=[None])).state is ReplyState.SCHEDULED
    assert (await repo.requeue_reply(permanent.id)).state is ReplyState.SCHEDULED  # any kind

    for reply_id in (permanent.id, unknown.id):  # re-queued once: no longer failed
        with pytest.raises(Conflict, match="scheduled"):
            await repo.requeue_reply(reply_id)
    with pytest.raises(NotFound):
        await repo.requeue_reply(permanent.id + 1000)


async def test_requeue_in_a_unit_of_work(repo: Repository, chat) -> None:
    """The recovery runs it inside Repository.transaction (the lean path on SQLite)."""
    failed, message = await _failed(repo, chat, 1, Failure.OUTAGE)

    def unit(tx):
        [(reply, newest, _, _)] = tx.outage_failures(10)
        return tx.requeue_reply(reply.id, failures=[Failure.OUTAGE]), newest

    requeued, newest = await repo.transaction(unit)
    assert newest == NOW
    assert requeued == await repo.get_reply(failed.id)
    assert requeued.state is ReplyState.SCHEDULED
    assert (await repo.get_message(message.id)).direction is Direction.INCOMING
