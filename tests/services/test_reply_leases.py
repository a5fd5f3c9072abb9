"""Leases are released at start-up (twin.jobs.worker.ReplyWorker.start): a job a stopped or
dead daemon left leased in storage resumes at once after the next start, from its last
committed step, and its contact gets exactly one complete reply — not zero (the lease would
otherwise hold it for LEASE_SECONDS), not two (bubbles sent before are skipped; one Telegram
accepted but the daemon never recorded is resent with its stored random_id, which Telegram
reports as a duplicate). The clock never moves here: nothing waits for a lease to expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.fakes import (
    FakeAccounts,
    FakeMessenger,
    Gate,
    ScriptedLLM,
    WatchedClock,
    incoming,
    start_twin,
    twin_settings,
)
from twin.domain.models import Direction, ReplyState
from twin.jobs.worker import LEASE_SECONDS

ANSWER = "First bubble here.\n\nSecond bubble here.\n\nThird bubble here."
BUBBLES = ["First bubble here.", "Second bubble here.", "Third bubble here."]
CHAT = 801


@pytest.mark.parametrize(
    "interrupted",
    ["generating", "sending: bubble 2 not accepted", "sending: bubble 2 accepted, not recorded"],
)
async def test_a_job_leased_by_a_stopped_daemon_resumes_at_start_and_is_sent_once(
    engine_url: str, tmp_path: Any, clock: WatchedClock, interrupted: str
) -> None:
    settings = twin_settings(engine_url, tmp_path, humanize={"bubble_max_chars": 25})
    messenger = FakeMessenger()
    accounts = FakeAccounts(messenger)
    llm = ScriptedLLM(default=ANSWER)
    gate: Gate
    if interrupted == "generating":
        gate = llm.hold()
    else:
        gate = messenger.hold_send(2, after_delivery=interrupted.endswith("not recorded"))

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("what's up?", chat=CHAT, at=clock.now()))
        await gate.entered.wait()
        [scheduled] = twin.recorder.of("reply.scheduled")
        reply_id = scheduled.data["reply"]
    # The daemon is gone with the job in flight: its lease is still in storage.
    left = await _reply(settings, clock, reply_id)
    assert left.state is (
        ReplyState.GENERATING if interrupted == "generating" else ReplyState.SENDING
    )
    assert left.lease_until == clock.now() + timedelta(seconds=LEASE_SECONDS)

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        await twin.recorder.wait_for("reply.sent", reply=reply_id)
        await twin.idle()
        done = await twin.repo.get_reply(reply_id)
        bubbles = [
            m for m in await twin.repo.reply_messages(reply_id) if m.direction is Direction.OUTGOING
        ]
        duplicates = [e.data["duplicate"] for e in twin.recorder.of("bubble.sent")]

    assert messenger.texts(CHAT) == BUBBLES  # each once, in order
    assert (done.state, done.lease_until) == (ReplyState.SENT, None)
    assert done.attempts == 2  # the interrupted run and the resumed one
    sent = [b for b in bubbles if b.state is ReplyState.SENT]
    assert [b.text for b in sorted(sent, key=lambda b: b.bubble_index)] == BUBBLES
    assert {b.random_id for b in sent} == {s.random_id for s in messenger.delivered}
    if interrupted == "generating":
        assert len(llm.calls) == 2  # nothing was stored: generated again
        assert duplicates == [False] * 3
    else:
        assert len(llm.calls) == 1  # the stored bubbles are resumed, not regenerated
        # After the start: bubble 1 is not resent; bubble 2 is, with its random_id (a
        # duplicate if Telegram had accepted it before the daemon went away); then bubble 3.
        assert duplicates == [interrupted.endswith("not recorded"), False]
        assert len(messenger.attempts) == 4


async def _reply(settings: Any, clock: WatchedClock, reply_id: int) -> Any:
    from twin.db.engine import database

    async with database(settings, clock=clock) as db:
        return await db.repo.get_reply(reply_id)
