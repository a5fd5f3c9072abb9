"""Earned autonomy end to end in the daemon (issue 18 §3): a chat in draft mode whose drafts the
owner keeps sending unchanged moves to auto (the chat's own override, an event with the reason);
the owner deleting an auto reply on their phone sends it back to draft."""

from __future__ import annotations

from typing import Any

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import (
    FakeAccounts,
    FakeMessenger,
    ScriptedLLM,
    WatchedClock,
    incoming,
    start_twin,
)
from tests.services.conftest import clock  # noqa: F401  (a fixture)
from tests.services.test_drafts import drafted, settings_for
from twin import keys

CHAT = 41


async def test_a_chat_earns_auto_and_loses_it_when_the_owner_deletes_an_auto_reply(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = settings_for(
        engine_url, tmp_path, autonomy=True, autonomy_min_drafts=3, autonomy_approval=0.6
    )
    messenger = FakeMessenger()
    llm = ScriptedLLM(default="Sure!")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        drafts = twin.app[keys.DRAFTS]
        autonomy = twin.app[keys.SERVICES]["autonomy"]
        for n, text in enumerate(("hi", "ok?", "thanks"), start=1):
            draft = await drafted(twin, CHAT, text, count=n)
            await drafts.send(draft["draft"])  # unchanged
            await twin.idle()
            await autonomy.drain()
        moved = (await twin.recorder.wait_for("chat.autonomy")).data
        assert (moved["mode"], moved["chat"]) == ("auto", CHAT)
        assert moved["reason"].startswith("3 of the last 3 drafts were sent unchanged")

        # Now answered at once, no draft.
        await twin.intake.incoming(incoming("see you?", chat=CHAT, at=clock.now()))
        await twin.idle()
        assert messenger.texts(CHAT)[-1] == "Sure!" and len(messenger.texts(CHAT)) == 4
        assert len(twin.recorder.of("draft.created")) == 3

        # The owner deletes that auto reply on their phone: back to draft.
        takeover = twin.app[keys.SERVICES]["pipeline"].takeover
        await takeover.on_deleted("default", None, [messenger.delivered[-1].message_id])
        await autonomy.drain()
        back = (await twin.recorder.wait_for("chat.autonomy", count=2)).data
        assert (back["mode"], back["reason"]) == ("draft", "the owner deleted an auto reply")
        await drafted(twin, CHAT, "hello again", count=4)  # drafted again

