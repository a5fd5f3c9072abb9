"""The Telegram-Business rules through the whole pipeline (intake → plan → worker → fakes, on
real storage): "only if offline" reads the owner's activity on the account, "All chats
except…" comes from the settings, and a greeting is not repeated while a reply carrying it
waits out a vacation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.fakes import (
    ScriptedLLM,
    WatchedClock,
    incoming,
    owner_wrote,
    start_twin,
    twin_settings,
)
from twin.domain.models import ReplyState

AWAY = "I'm on holiday, back on Monday."


async def test_away_only_if_offline_waits_for_the_owner_to_be_gone(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(
        engine_url,
        tmp_path,
        schedule={
            "away": "always",
            "away_message": AWAY,
            "away_only_if_offline": True,
            "away_offline_minutes": 10,
            "away_repeat_hours": 0,
        },
    )
    async with start_twin(settings, clock=clock, llm=ScriptedLLM()) as twin:
        # The owner writes in another chat from their phone: active on the account.
        await twin.intake.owner_activity(owner_wrote(chat=900, at=clock.now()))
        await clock.advance(4 * 60)
        first = incoming("are you there?", chat=501, at=clock.now())
        assert await twin.intake.incoming(first)
        await twin.idle()
        record = await twin.stored(first)
        assert (record.state, record.state_reason) == (ReplyState.SKIPPED, "owner_online")
        [skipped] = twin.recorder.of("message.skipped")
        assert skipped.data["reason"] == "owner_online"
        assert skipped.data["explain"][-1] == (
            "skip (owner_online): away = always; the owner was active 4 min ago "
            f"({(clock.now() - timedelta(minutes=4)).isoformat(timespec='seconds')}), within "
            "10 min: no away message (away_only_if_offline = true)"
        )
        assert twin.messenger.texts(501) == []

        # Ten minutes after the owner's last activity the away message goes out.
        await clock.advance(6 * 60)
        second = incoming("hello?", chat=501, at=clock.now())
        assert await twin.intake.incoming(second)
        await twin.idle()
        assert twin.messenger.texts(501) == [AWAY]
        assert (await twin.stored(second)).state is ReplyState.SENT


async def test_all_chats_except_contacts(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(
        engine_url,
        tmp_path,
        twin={
            "exclude_selected": True,
            "contacts": True,
            "non_contacts": False,
            "new_chats": False,
            "existing_chats": False,
        },
    )
    async with start_twin(settings, clock=clock, llm=ScriptedLLM("Hi stranger")) as twin:
        friend = incoming("hi", chat=601, at=clock.now(), contact=True)
        stranger = incoming("hi", chat=602, at=clock.now(), contact=False)
        for message in (friend, stranger):
            assert await twin.intake.incoming(message)
        await twin.idle()
        record = await twin.stored(friend)
        assert (record.state, record.state_reason) == (ReplyState.SKIPPED, "contact")
        [skipped] = twin.recorder.of("message.skipped")
        assert skipped.data["explain"][-1] == (
            "skip (contact): contacts are left out (exclude_selected = true, contacts = true)"
        )
        assert twin.messenger.texts(602) == ["Hi stranger"]
        assert twin.messenger.texts(601) == []


async def test_a_greeting_waiting_out_a_vacation_is_not_repeated(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    greeting = "Hello! Olga's assistant here."
    start = clock.now()  # Saturday 5 December 2026, 10:00 UTC
    settings = twin_settings(
        engine_url,
        tmp_path,
        twin={"greeting": greeting, "greeting_after_days": 2},
        schedule={"closed": [{"start": "2026-12-05", "end": "2026-12-10"}]},  # open again Fri
    )
    llm = ScriptedLLM("First answer.", "Second answer.")
    async with start_twin(settings, clock=clock, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("hello", chat=701, at=clock.now()))
        await twin.idle()
        # Three days later, longer than the greeting period, the first reply still waits.
        await clock.advance(3 * 24 * 3600)
        assert await twin.intake.incoming(incoming("anyone?", chat=701, at=clock.now()))
        await twin.idle()
        scheduled = twin.recorder.of("reply.scheduled")
        assert [e.data["action"] for e in scheduled] == ["defer", "defer"]
        greeted = [[x for x in e.data["explain"] if x.startswith("greeting:")] for e in scheduled]
        assert greeted == [["greeting: new chat"], []]
        # The vacation ends: both replies go out, the greeting once.
        await clock.advance((start + timedelta(days=6) - clock.now()).total_seconds())
        await twin.idle()
    seen = "\n".join(twin.messenger.texts(701))
    assert seen.count(greeting) == 1
    assert "First answer." in seen and "Second answer." in seen
