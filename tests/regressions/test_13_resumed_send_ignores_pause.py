"""Issue 13 (found writing the service tests): a reply resumed in `sending` (after a restart, or
when its lease ran out) sends its remaining bubbles without looking at the chat's pause.

Pausing is two transactions (twin.services.chats.hold: set `paused_until`, then
`cancel_pending`). When the second never commits — the daemon dies between them, or the
database fails the cancel (`POST /chats/{id}/pause` answers 503 while the pause itself is
stored; the running job has already stopped on its in-memory flag and keeps its lease) — the
chat is paused but its half-sent reply is still `sending`. `_generate` checks the pause before
anything is sent; `_send` does not, so the resumed job sends bubbles 2 and 3 into a chat the
owner paused. Here the daemon stops with bubble 2 in flight and the pause is stored as the
first half of `hold` leaves it.

Fixed: the execute step (twin/services/pipeline/execute.py) looks at the chat's pause before it
resumes a job in `sending`, and cancels it (`paused`) instead."""

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
    start_twin,
    twin_settings,
)
from tests.services.conftest import clock  # noqa: F401  (a fixture)
from twin.db.engine import database
from twin.domain.models import ReplyState

CHAT = 1302


async def test_a_half_sent_reply_of_a_paused_chat_is_not_resumed(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(engine_url, tmp_path, humanize={"bubble_max_chars": 25})
    messenger = FakeMessenger()
    accounts = FakeAccounts(messenger)
    llm = ScriptedLLM("First bubble here.\n\nSecond bubble here.\n\nThird bubble here.")
    gate = messenger.hold_send(2)

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        assert await twin.intake.incoming(incoming("news?", chat=CHAT, at=clock.now()))
        await gate.entered.wait()  # bubble 1 sent, bubble 2 in flight: the daemon goes away
        reply_id = (await twin.recorder.wait_for("reply.sending")).data["reply"]

    # What the first half of `hold` leaves: the chat paused for an hour, the reply untouched.
    async with database(settings, clock=clock) as db:
        account = await db.repo.get_account("default")
        await db.repo.set_paused(account.id, CHAT, clock.now() + timedelta(hours=1))
        assert (await db.repo.get_reply(reply_id)).state is ReplyState.SENDING

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        await twin.idle()
        reply = await twin.repo.get_reply(reply_id)
    assert messenger.texts(CHAT) == ["First bubble here."]  # nothing more while paused
    assert (reply.state, reply.reason) == (ReplyState.CANCELLED, "paused")
