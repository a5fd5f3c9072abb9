"""The owner reading a chat from another device (twin.services.pipeline.takeover): it cancels a
reply waiting out its grace period when the read covers what it answers, and nothing else — no
takeover, no cancellation without a grace period, none of a newer message or a started job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.fakes import (
    FakeAccounts,
    FakeMessenger,
    RunningTwin,
    ScriptedLLM,
    WatchedClock,
    incoming,
    start_twin,
    twin_settings,
)
from twin import keys
from twin.domain.models import OwnerRead

CHAT = 902


def read(twin: RunningTwin, max_id: int) -> Any:
    takeover = twin.app[keys.SERVICES]["pipeline"].takeover
    return takeover.on_owner_read(
        OwnerRead(account="default", chat_id=CHAT, max_id=max_id, date=twin.clock.now())
    )


async def test_a_read_cancels_only_what_it_covers_in_the_grace_period(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(engine_url, tmp_path, twin={"grace_minutes": 5})
    accounts = FakeAccounts(FakeMessenger())
    async with start_twin(settings, clock=clock, accounts=accounts, llm=ScriptedLLM("Hi!")) as twin:
        first = incoming("hey", chat=CHAT, at=clock.now(), message_id=10)
        await twin.intake.incoming(first)
        scheduled = await twin.recorder.wait_for("reply.scheduled")
        assert scheduled.data["delay_s"] == 300  # the grace period

        await read(twin, 9)  # an older message: the reply still answers an unread one
        await twin.recorder.wait_for("owner.read")
        assert (await twin.repo.get_reply(scheduled.data["reply"])).state.value == "scheduled"

        await read(twin, 10)
        cancelled = await twin.recorder.wait_for("reply.cancelled")
        assert cancelled.data["reason"] == "owner_read"
        chat = await twin.repo.get_chat_by_peer((await twin.repo.get_account("default")).id, CHAT)
        assert chat.paused_until is None  # a read is no takeover
        assert (await twin.stored(first)).state_reason == "owner_read"

        # A newer message: a repeated read of the older one does not cover it, and once its
        # grace period is over the twin answers.
        later = incoming("still there?", chat=CHAT, at=clock.now(), message_id=11)
        await twin.intake.incoming(later)
        await read(twin, 10)
        await clock.advance(timedelta(minutes=6).total_seconds())
        await twin.recorder.wait_for("reply.sent")
        assert [m.text for m in twin.messenger.delivered] == ["Hi!"]


async def test_without_a_grace_period_a_read_cancels_nothing(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(
        engine_url, tmp_path, humanize={"enabled": True, "read_delay_min": 60,
                                        "read_delay_median": 60, "read_delay_max": 60}
    )
    async with start_twin(settings, clock=clock, llm=ScriptedLLM("Hi!")) as twin:
        await twin.intake.incoming(incoming("hey", chat=CHAT, at=clock.now(), message_id=10))
        scheduled = await twin.recorder.wait_for("reply.scheduled")
        await read(twin, 10)
        owner_read = await twin.recorder.wait_for("owner.read")
        assert owner_read.data["cancelled"] == 0
        assert (await twin.repo.get_reply(scheduled.data["reply"])).state.value == "scheduled"
