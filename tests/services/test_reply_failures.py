"""A reply whose dependency keeps failing transiently is retried with backoff until
`[twin] max_attempts`, then `failed` with `failure = outage` and its reason; it is never sent
meanwhile, a restart does not resume it, and only the outage probe (twin.services.recovery)
re-queues it, with the bubbles' stored random_ids so it still goes out once. A refusal fails it
at once, and nothing re-queues it. Pipeline + worker + recovery + real storage, fake peers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import (
    FakeAccounts,
    FakeMessenger,
    RunningTwin,
    ScriptedLLM,
    WatchedClock,
    incoming,
    start_twin,
)
from tests.fakes import twin_settings as settings_for
from twin.brain.errors import LLMUnavailable
from twin.domain.models import Failure, ReplyState
from twin.errors import TelegramForbidden, TelegramUnavailable
from twin.services.recovery import IDLE_CHECK

MAX_ATTEMPTS = 3
RETRY_MAX = 8.0  # seconds: the longest backoff between two attempts (twin.retry_max_seconds)
CHAT = 501


def settings(engine_url: str, tmp_path: Any) -> Any:
    return settings_for(
        engine_url,
        tmp_path,
        twin={
            "max_attempts": MAX_ATTEMPTS,
            "retry_base_seconds": 1,
            "retry_max_seconds": RETRY_MAX,
        },
    )


async def exhaust_retries(twin: RunningTwin, clock: WatchedClock) -> Any:
    """Let every backoff run out (the clock moves past each), until the reply fails."""
    for attempt in range(1, MAX_ATTEMPTS):
        await twin.recorder.wait_for("reply.retry", attempt=attempt)
        await clock.advance(RETRY_MAX)
    return await twin.recorder.wait_for("reply.failed")


@pytest.mark.parametrize("failing", ["telegram", "llm"])
async def test_a_reply_failing_transiently_fails_after_max_attempts_and_only_a_probe_requeues_it(
    engine_url: str, tmp_path: Any, clock: WatchedClock, failing: str
) -> None:
    messenger = FakeMessenger()
    llm = ScriptedLLM(default="Sounds good, see you then.")
    if failing == "telegram":
        messenger.fail_sends(TelegramUnavailable("Telegram is unreachable"), times=100)
    else:
        llm.then(*[LLMUnavailable("provider down")] * MAX_ATTEMPTS)
    accounts = FakeAccounts(messenger)
    config = settings(engine_url, tmp_path)
    async with start_twin(config, clock=clock, accounts=accounts, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("dinner at 8?", chat=CHAT, at=clock.now()))
        failed = await exhaust_retries(twin, clock)
        await twin.idle()
        reply = await twin.repo.get_reply(failed.data["reply"])
        assert reply.state is ReplyState.FAILED
        assert reply.failure is Failure.OUTAGE
        error = "TelegramUnavailable" if failing == "telegram" else "LLMUnavailable"
        assert reply.reason == f"{error}: gave up after {MAX_ATTEMPTS} attempts"
        assert reply.attempts == MAX_ATTEMPTS
        assert failed.data["failure"] == "outage" and "error" in failed.data
        assert [e.data["attempt"] for e in twin.recorder.of("reply.retry")] == [1, 2]
        assert messenger.delivered == []  # never sent
        if failing == "telegram":
            # Every attempt resent the one stored bubble, with its stored random_id.
            assert len(messenger.attempts) == MAX_ATTEMPTS
            assert len({random_id for _, random_id in messenger.attempts}) == 1
            bubbles = [m for m in await twin.repo.reply_messages(reply.id) if m.reply_id]
            stored_random_ids = {m.random_id for m in bubbles if m.random_id is not None}
            assert stored_random_ids == {messenger.attempts[0][1]}
        else:
            assert len(llm.calls) == MAX_ATTEMPTS and messenger.attempts == []
        # Its message says so too (an unsent bubble is cancelled, with the same reason).
        linked = await twin.repo.reply_messages(reply.id)
        states = {(m.direction.value, m.state, m.state_reason) for m in linked}
        assert ("incoming", ReplyState.FAILED, reply.reason) in states
        assert {state for _, state, _ in states} <= {ReplyState.FAILED, ReplyState.CANCELLED}

    # The peer works again; the daemon restarts. Nothing resumes the failed reply by itself:
    # not the lease release at start, not the worker's claims.
    messenger.heal()
    llm.heal()
    async with start_twin(config, clock=clock, accounts=accounts, llm=llm) as twin:
        await twin.idle()
        assert messenger.delivered == []
        assert (await twin.repo.get_reply(reply.id)).state is ReplyState.FAILED
        # The outage probe (its first after retry_base_seconds) re-queues it with one attempt.
        await clock.sleeping(within=1.0)
        await clock.advance(1.0)
        requeued = await twin.recorder.wait_for("reply.requeued", reply=reply.id)
        assert requeued.data["trigger"] == "probe"
        await twin.recorder.wait_for("reply.sent", reply=reply.id)
        await twin.idle()
        assert messenger.texts(CHAT) == ["Sounds good, see you then."]  # once
        if failing == "telegram":  # the stored bubble, not a new one
            assert messenger.delivered[0].random_id == messenger.attempts[0][1]
        done = await twin.repo.get_reply(reply.id)
        assert (done.state, done.failure) == (ReplyState.SENT, None)

    async with start_twin(config, clock=clock, accounts=accounts, llm=llm) as twin:
        await clock.advance(3600)
        await twin.idle()
    assert len(messenger.delivered) == 1


async def test_a_refused_send_fails_at_once_and_is_never_sent_again(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    messenger = FakeMessenger()
    messenger.fail_sends(
        TelegramForbidden("the user blocked the owner", rpc_error="USER_IS_BLOCKED")
    )
    accounts = FakeAccounts(messenger)
    config = settings(engine_url, tmp_path)
    async with start_twin(config, clock=clock, accounts=accounts) as twin:
        assert await twin.intake.incoming(incoming("hello?", chat=CHAT, at=clock.now()))
        failed = await twin.recorder.wait_for("reply.failed")
        await twin.idle()
        reply = await twin.repo.get_reply(failed.data["reply"])
        assert (reply.state, reply.failure) == (ReplyState.FAILED, Failure.PERMANENT)
        assert "USER_IS_BLOCKED" in (reply.reason or "")
        assert len(messenger.attempts) == 1 and twin.recorder.of("reply.retry") == []

    async with start_twin(config, clock=clock, accounts=accounts) as twin:
        # The outage probe finds no outage failure and looks again in an hour: a refusal is
        # re-queued only by hand.
        await clock.sleeping(within=IDLE_CHECK)
        await clock.advance(IDLE_CHECK)
        await twin.idle()
        assert twin.recorder.of("reply.requeued") == []
        assert (await twin.repo.get_reply(reply.id)).state is ReplyState.FAILED
    assert messenger.delivered == [] and len(messenger.attempts) == 1
