"""The policies that act through the whole pipeline, not only in decide(): the rate limits
count what storage holds (replies sent or under way in the last hour, per chat and per
account), and the greeting of a new (or long silent) chat is prepended to the model's answer.
Intake → decide → worker → fakes, on real storage."""

from __future__ import annotations

from typing import Any

from tests.fakes import RunningTwin, ScriptedLLM, WatchedClock, incoming, start_twin, twin_settings
from twin.domain.models import IncomingMessage, ReplyState

HOUR = 3600.0


async def answer(twin: RunningTwin, message: IncomingMessage) -> str:
    """Hand `message` to intake and wait for its outcome: the reply's text once sent, or
    "skipped: <reason>" (a rate limit skips at the decision, before any reply exists)."""
    assert await twin.intake.incoming(message)
    await twin.idle()
    record = await twin.stored(message)
    if record.state is ReplyState.SKIPPED:
        return f"skipped: {record.state_reason}"
    assert record.state is ReplyState.SENT, record
    return (await twin.repo.get_reply(record.reply_id)).text


async def test_the_reply_over_the_chat_limit_is_skipped_and_the_window_moves_on(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(engine_url, tmp_path, twin={"max_replies_per_chat_per_hour": 2})
    llm = ScriptedLLM("one", "two", "three", "four")
    async with start_twin(settings, clock=clock, llm=llm) as twin:
        outcomes = []
        for text in ("a", "b", "c"):
            outcomes.append(await answer(twin, incoming(text, chat=501, at=clock.now())))
            await clock.advance(60)
        # Another chat of the same account is not limited by this one.
        other = await answer(twin, incoming("d", chat=502, at=clock.now()))
        assert outcomes == ["one", "two", "skipped: rate_limited_chat"]
        assert other == "three"
        assert twin.messenger.texts(501) == ["one", "two"]
        assert len(llm.calls) == 3  # the limited message never reached the model
        [skipped] = twin.recorder.of("message.skipped")
        assert skipped.data["reason"] == "rate_limited_chat"
        assert any("limit 2" in line for line in skipped.data["explain"])

        # An hour after the first reply, it no longer counts.
        await clock.advance(HOUR - 3 * 60 + 1)
        assert await answer(twin, incoming("e", chat=501, at=clock.now())) == "four"
        assert twin.messenger.texts(501) == ["one", "two", "four"]


async def test_the_reply_over_the_account_limit_is_skipped_in_any_chat(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(
        engine_url,
        tmp_path,
        twin={"max_replies_per_account_per_hour": 3, "max_replies_per_chat_per_hour": 20},
    )
    async with start_twin(settings, clock=clock, llm=ScriptedLLM(default="ok")) as twin:
        outcomes = [
            await answer(twin, incoming("hi", chat=chat, at=clock.now()))
            for chat in (601, 602, 603, 604, 601)
        ]
        assert outcomes == ["ok", "ok", "ok"] + ["skipped: rate_limited_account"] * 2
        assert [s.chat for s in twin.messenger.delivered] == [601, 602, 603]
        assert twin.messenger.attempts == [(s.chat, s.random_id) for s in twin.messenger.delivered]
        await clock.advance(HOUR + 1)
        assert await answer(twin, incoming("again", chat=604, at=clock.now())) == "ok"


async def test_a_new_chat_is_greeted_once_and_again_after_a_long_silence(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    greeting = "Hi! This is Olga's assistant."
    settings = twin_settings(
        engine_url, tmp_path, twin={"greeting": greeting, "greeting_after_days": 2}
    )
    llm = ScriptedLLM("Nice to hear from you.", "Yes, tomorrow works.", "Long time no see!")
    async with start_twin(settings, clock=clock, llm=llm) as twin:
        first = await answer(twin, incoming("hello", chat=701, at=clock.now()))
        await clock.advance(60)
        second = await answer(twin, incoming("tomorrow?", chat=701, at=clock.now()))
        await clock.advance(3 * 24 * HOUR)
        later = await answer(twin, incoming("hey again", chat=701, at=clock.now()))

    assert first == f"{greeting}\n\nNice to hear from you."
    assert second == "Yes, tomorrow works."
    assert later == f"{greeting}\n\nLong time no see!"
    # What the contact saw: the greeting travels with the answer, in the bubbles.
    seen = twin.messenger.texts(701)
    assert "\n".join(seen).count(greeting) == 2
    assert seen[-1].endswith("Long time no see!")
    decisions = [e.data["explain"] for e in twin.recorder.of("reply.scheduled")]
    greeted = [[line for line in explain if line.startswith("greeting:")] for explain in decisions]
    assert greeted == [
        ["greeting: new chat"],
        [],
        ["greeting: no message in this chat for 3.0 days (greeting_after_days = 2)"],
    ]
    # The model writes the answer only: it is not asked to greet (later prompts hold the
    # greeting as the owner's own earlier words).
    assert all(greeting not in m.content for m in llm.calls[0])
