"""Issue 17: the owner's message and the takeover's pause used to be committed apart (intake
stored the message, the pipeline's hand-over paused the chat in a later transaction). A crash
between the two left the chat unpaused: the pending reply was cancelled after the restart (the
executor's admission, test_13_owner_takeover_lost_in_a_crash), but the contact's *next* message
was answered at once, inside the takeover the owner had started.

Fixed: intake sets the pause in the transaction that stores the owner's message
(`Takeover.pause_tx`); the hand-over only cancels what was pending."""

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

CHAT = 1701
DEBOUNCE = 60.0
TAKEOVER = 30.0


async def test_the_contacts_next_message_waits_out_a_takeover_interrupted_by_a_crash(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(
        engine_url,
        tmp_path,
        twin={
            "debounce_seconds": DEBOUNCE,
            "debounce_max_seconds": DEBOUNCE,
            "takeover_minutes": TAKEOVER,
            "takeover_resume": "answer",
        },
    )
    messenger = FakeMessenger()
    accounts = FakeAccounts(messenger)
    llm = ScriptedLLM(default="Sure, let me check.")

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("are you there?", chat=CHAT, at=clock.now()))
        await twin.recorder.wait_for("reply.scheduled")
        takeover = owner_wrote(chat=CHAT, at=clock.now())
        stored = asyncio.Event()

        async def dies(*_: Any) -> None:  # the process dies after the commit, before the hand-over
            stored.set()
            await asyncio.Event().wait()

        twin.intake.on_owner_activity = dies
        crashing = asyncio.create_task(twin.intake.owner_activity(takeover))
        await asyncio.wait_for(stored.wait(), 5)
        crashing.cancel()

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        chat = await twin.repo.get_chat_by_peer(
            await twin.intake.account_id("default"), CHAT
        )
        until = takeover.date + timedelta(minutes=TAKEOVER)
        assert chat.paused_until == until and chat.takeover_started_at == takeover.date
        # The contact writes again a minute later; the owner's message is not redelivered.
        await clock.advance(60)
        assert await twin.intake.incoming(incoming("hello??", chat=CHAT, at=clock.now()))
        await clock.advance(DEBOUNCE)
        await twin.idle()
        assert messenger.delivered == []  # inside the takeover: the twin stays silent
        # The takeover ends: the contact's waiting message is answered, once.
        await clock.advance(TAKEOVER * 60)
        await twin.idle()
        assert len(messenger.delivered) == 1
