"""Issue 17: resuming a chat early (the API, `.twin resume`) brings forward the reply deferred
to the end of the owner's takeover — before, it stayed due at the old end, and the contact
waited out a takeover the owner had already ended."""

from __future__ import annotations

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

CHAT = 1702
TAKEOVER = 30.0


async def test_resuming_early_answers_the_deferred_messages_now(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(engine_url, tmp_path, twin={"takeover_minutes": TAKEOVER})
    messenger = FakeMessenger()
    llm = ScriptedLLM(default="Back now: yes!")

    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        await twin.intake.owner_activity(owner_wrote(chat=CHAT, at=clock.now()))
        await clock.advance(60)
        assert await twin.intake.incoming(incoming("ok?", chat=CHAT, at=clock.now()))
        deferred = await twin.recorder.wait_for("reply.scheduled")
        assert deferred.data["action"] == "defer"
        planned = await twin.repo.get_reply(deferred.data["reply"])
        assert planned.reply_at >= clock.now() + timedelta(minutes=TAKEOVER - 1)

        await twin.chats.resume("default", CHAT)  # the owner is done after a minute
        sooner = await twin.recorder.wait_for("reply.rescheduled")
        assert sooner.data["reply"] == planned.id and sooner.data["resumed"] is True
        reply = await twin.repo.get_reply(planned.id)
        assert reply.reply_at == clock.now()  # humanize is off here: no read delay
        assert any("the chat was resumed" in line for line in reply.decision["explain"])
        await twin.idle()
        assert [s.text for s in messenger.delivered] == ["Back now: yes!"]
        assert (await twin.repo.get_reply(planned.id)).state is ReplyState.SENT

        # Resuming a chat with nothing deferred moves nothing.
        await twin.chats.resume("default", CHAT)
        await twin.recorder.wait_for("chat.resumed", count=2)
        assert len(twin.recorder.of("reply.rescheduled")) == 1
