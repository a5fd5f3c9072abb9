"""Cancellation in the middle of sending: the owner takes over (writes in the chat from
another device) or pauses the chat while bubble 2 of 3 is in flight. The bubble in flight
cannot be recalled, but no further bubble goes out, the reply ends `cancelled` (reason
`paused`), what Telegram did accept is recorded as sent (the next prompt shows it as the
owner's words), a send that failed meanwhile is not retried, and nothing is resent after a
restart, even once the pause is over."""

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
    owner_wrote,
    start_twin,
    twin_settings,
)
from twin.domain.models import Direction, ReplyState
from twin.errors import TelegramUnavailable

ANSWER = "First bubble here.\n\nSecond bubble here.\n\nThird bubble here."
BUBBLES = ["First bubble here.", "Second bubble here.", "Third bubble here."]
CHAT = 901


async def take_over(twin: RunningTwin, clock: WatchedClock, how: str) -> None:
    if how == "owner writes":
        await twin.intake.owner_activity(owner_wrote(chat=CHAT, at=clock.now()))
    else:
        await twin.chats.pause("default", CHAT, 60)


@pytest.mark.parametrize("how", ["owner writes", "chat paused"])
@pytest.mark.parametrize("in_flight", ["accepted", "failed"])
async def test_a_takeover_while_bubble_2_is_in_flight_stops_the_reply_for_good(
    engine_url: str, tmp_path: Any, clock: WatchedClock, how: str, in_flight: str
) -> None:
    settings = twin_settings(engine_url, tmp_path, humanize={"bubble_max_chars": 25})
    messenger = FakeMessenger()
    accounts = FakeAccounts(messenger)
    llm = ScriptedLLM(ANSWER, default="Back again.")
    gate = messenger.hold_send(2)

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("tell me more", chat=CHAT, at=clock.now()))
        await gate.entered.wait()  # bubble 1 went out; bubble 2 is with Telegram
        await take_over(twin, clock, how)
        cancelled = await twin.recorder.wait_for("reply.cancelled")
        reply_id = cancelled.data["reply"]
        assert cancelled.data["reason"] == "paused"
        gate.release(None if in_flight == "accepted" else TelegramUnavailable("connection lost"))
        await twin.idle()

        reply = await twin.repo.get_reply(reply_id)
        bubbles = sorted(
            (
                m
                for m in await twin.repo.reply_messages(reply_id)
                if m.direction is Direction.OUTGOING
            ),
            key=lambda m: m.bubble_index,
        )
        assert (reply.state, reply.reason) == (ReplyState.CANCELLED, "paused")
        assert twin.recorder.of("reply.retry") == [] and twin.recorder.of("reply.failed") == []
        accepted = BUBBLES[:2] if in_flight == "accepted" else BUBBLES[:1]
        assert messenger.texts(CHAT) == accepted  # bubble 3 never
        assert len(messenger.attempts) == 2
        # What Telegram accepted is recorded as sent with its id; the rest is cancelled.
        sent_ids = [s.message_id for s in messenger.delivered]
        assert [(b.state, b.tg_message_id) for b in bubbles] == [
            (ReplyState.SENT, sent_ids[0]),
            (ReplyState.SENT, sent_ids[1])
            if in_flight == "accepted"
            else (ReplyState.CANCELLED, None),
            (ReplyState.CANCELLED, None),
        ]

    # A restart after the pause is over resends nothing: the reply stays cancelled.
    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        await clock.advance(2 * 3600)
        await twin.idle()
        assert messenger.texts(CHAT) == accepted
        assert (await twin.repo.get_reply(reply_id)).state is ReplyState.CANCELLED
        # The contact writes again: the model reads what the contact really saw.
        assert await twin.intake.incoming(incoming("hello?", chat=CHAT, at=clock.now()))
        await twin.recorder.wait_for("reply.sent")
        await twin.idle()
    prompt = "\n".join(m.content for m in llm.calls[-1])
    assert "First bubble here." in prompt
    assert ("Second bubble here." in prompt) is (in_flight == "accepted")
    assert "Third bubble here." not in prompt
    assert messenger.texts(CHAT) == [*accepted, "Back again."]


async def test_a_takeover_while_the_last_bubble_is_in_flight_leaves_the_reply_cancelled(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    """The last bubble closes the reply in the transaction that records it: after a takeover
    that close conflicts, and the reply stays cancelled, with the accepted bubble recorded."""
    settings = twin_settings(engine_url, tmp_path, humanize={"bubble_max_chars": 25})
    messenger = FakeMessenger()
    llm = ScriptedLLM("First bubble here.\n\nSecond bubble here.")
    gate = messenger.hold_send(2)
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        assert await twin.intake.incoming(incoming("and?", chat=CHAT, at=clock.now()))
        await gate.entered.wait()
        await take_over(twin, clock, "owner writes")
        reply_id = (await twin.recorder.wait_for("reply.cancelled")).data["reply"]
        gate.release()
        await twin.recorder.wait_for("bubble.sent", index=1)
        await twin.idle()
        reply = await twin.repo.get_reply(reply_id)
        bubbles = [
            m for m in await twin.repo.reply_messages(reply_id) if m.direction is Direction.OUTGOING
        ]
        assert (reply.state, reply.reason) == (ReplyState.CANCELLED, "paused")
        assert twin.recorder.of("reply.sent") == []
        assert messenger.texts(CHAT) == BUBBLES[:2]
        assert {(b.state, b.tg_message_id) for b in bubbles} == {
            (ReplyState.SENT, s.message_id) for s in messenger.delivered
        }
