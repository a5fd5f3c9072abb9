"""Issue 13 (found writing the service tests): owner activity is stored in one transaction and
handed to the pipeline (pause the chat, cancel its pending reply) in later ones. A crash between
the two loses the takeover for good: on restart the redelivered owner message is found stored,
so intake hands nothing over (`_Takeover` covers only a database outage), nothing else compares
`chats.last_owner_activity_at` with the pending reply, and the twin answers a chat the owner
had just taken over. Incoming messages do not have this gap: they are stored and decided in one
transaction (docs/ARCHITECTURE.md, "Intake").

Fixed where every job passes: a job about to be generated whose chat the owner wrote in at or
after its newest message is cancelled, and the takeover's pause is set from the activity's date,
in one transaction (twin.services.pipeline.execute, `_admit`) — the rule recovery already
applied to failed replies (`owner_took_over` in twin.domain.decide)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import (
    FakeAccounts,
    FakeMessenger,
    ScriptedLLM,
    WatchedClock,
    incoming,
    owner_wrote,
    start_twin,
    twin_settings,
)
from tests.services.conftest import clock  # noqa: F401  (a fixture)
from twin.domain.models import ReplyState

CHAT = 1301
DEBOUNCE = 60.0


async def test_a_takeover_interrupted_by_a_crash_still_cancels_the_pending_reply(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(
        engine_url,
        tmp_path,
        twin={"debounce_seconds": DEBOUNCE, "debounce_max_seconds": DEBOUNCE},
    )
    messenger = FakeMessenger()
    accounts = FakeAccounts(messenger)
    llm = ScriptedLLM(default="Sure, let me check.")

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("are you there?", chat=CHAT, at=clock.now()))
        scheduled = await twin.recorder.wait_for("reply.scheduled")
        # The owner answers in the same second: Telegram's later message id says it came after.
        takeover = owner_wrote(chat=CHAT, at=clock.now())
        # The process dies right after the owner activity is committed, before its hand-over.
        stored = asyncio.Event()

        async def dies(*_: Any) -> None:
            stored.set()
            await asyncio.Event().wait()  # never returns: the process is gone

        twin.intake.on_owner_activity = dies
        crashing = asyncio.create_task(twin.intake.owner_activity(takeover))
        await asyncio.wait_for(stored.wait(), 5)
        await twin.recorder.wait_for("owner.activity")
        crashing.cancel()

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        # Telegram's catch-up delivers the owner's message again after the restart.
        await twin.intake.owner_activity(takeover)
        await clock.advance(DEBOUNCE)
        await twin.idle()
        reply = await twin.repo.get_reply(scheduled.data["reply"])
        assert messenger.delivered == []  # the owner took over: the twin stays silent
        assert reply.state is ReplyState.CANCELLED
        # ...and keeps out of the chat for the takeover's minutes, counted from the activity.
        chat = await twin.repo.get_chat(reply.chat_id)
        minutes = settings.twin.takeover_minutes
        assert chat.paused_until == takeover.date + timedelta(minutes=minutes)
