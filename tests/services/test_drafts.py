"""Copilot mode (issue 18 §1): in draft mode a reply is written and kept for the owner, who
sends it (as written or edited), skips it, or lets it expire; a newer message regenerates it;
the owner writing in the chat cancels it. The daemon runs on a ManualClock with the scripted
model and the fake messenger; the API is called over HTTP on the same daemon."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web

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
from twin import keys
from twin.domain.commands import OwnerText
from twin.errors import Conflict

TOKEN = "drafts-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(url: str, tmp_path: Any, **twin: Any) -> Any:
    return twin_settings(
        url,
        tmp_path,
        twin={"mode": "draft", "draft_expiry_minutes": 30, **twin},
        api={"tokens": [TOKEN]},
    )


async def drafted(twin: Any, chat: int, text: str, count: int = 1) -> Any:
    """The contact writes; the reply is drafted: the `draft.created` event's data."""
    assert await twin.intake.incoming(incoming(text, chat=chat, at=twin.clock.now()))
    await twin.idle()
    return (await twin.recorder.wait_for("draft.created", count=count)).data


async def test_drafts_are_kept_regenerated_and_sent_edited_exactly_once(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    messenger = FakeMessenger()
    llm = ScriptedLLM("A chain is 450 ₽.", "Yes, we're open until 9.")
    settings = settings_for(engine_url, tmp_path)
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        drafts = twin.app[keys.DRAFTS]
        first = await drafted(twin, 71, "how much is a chain?")
        assert messenger.texts(71) == [] and messenger.reads == []  # nothing, not even read
        await twin.app[keys.DRAFTS].drain()
        [note] = messenger.texts("me")  # shown to the owner in their Saved Messages
        assert "«how much is a chain?»" in note and "A chain is 450 ₽." in note
        [pending] = await drafts.list()
        assert (pending.id, pending.state) == (first["draft"], "pending")
        assert pending.text == "A chain is 450 ₽."
        assert pending.peer_id == 71 and pending.expires_at is not None

        # The contact writes again: the new answer is drafted and replaces the first draft.
        await clock.advance(5)
        second = await drafted(twin, 71, "and are you open?", count=2)
        assert second["superseded"] == 1
        [pending] = await drafts.list()
        assert pending.id == second["draft"] and pending.text == "Yes, we're open until 9."
        assert (await drafts.get(first["draft"])).state == "superseded"

        # The owner edits and sends it: delivered once, without asking the model again.
        asked = len(llm.calls)
        sent, reply = await drafts.send(pending.id, "Yes! Open until 9 today.")
        assert (sent.state, sent.reason) == ("sent", "edited")
        assert sent.final_text == "Yes! Open until 9 today."
        assert sent.sent_reply_id == reply.id
        await twin.idle()
        assert messenger.texts(71) == ["Yes! Open until 9 today."]
        assert len(llm.calls) == asked
        with pytest.raises(Conflict):
            await drafts.send(pending.id)  # decided already
        await twin.idle()
        assert messenger.texts(71) == ["Yes! Open until 9 today."]
        event = (await twin.recorder.wait_for("draft.sent")).data
        assert event["edited"] is True and event["draft"] == pending.id


async def test_skip_expiry_and_the_owner_writing_decide_the_rest(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    messenger = FakeMessenger()
    llm = ScriptedLLM(default="Sure.")
    settings = settings_for(engine_url, tmp_path)
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        drafts = twin.app[keys.DRAFTS]
        for chat in (81, 82, 83):
            assert await twin.intake.incoming(incoming("hi?", chat=chat, at=clock.now()))
        await twin.idle()
        await twin.recorder.wait_for("draft.created", count=3)
        by_chat = {d.peer_id: d for d in await drafts.list()}

        skipped = await drafts.skip(by_chat[81].id)
        assert (skipped.state, skipped.reason) == ("skipped", "owner")
        await twin.intake.owner_activity(owner_wrote(chat=82, at=clock.now()))
        cancelled = (await twin.recorder.wait_for("draft.cancelled")).data
        assert cancelled["drafts"] == [by_chat[82].id]
        assert (await drafts.get(by_chat[82].id)).state == "cancelled"

        await clock.advance(30 * 60)  # the last one's time is up
        expired = (await twin.recorder.wait_for("draft.expired")).data
        assert expired["draft"] == by_chat[83].id
        assert await drafts.list() == []
        await twin.idle()
        assert [sent.chat for sent in messenger.delivered] == ["me"] * 3  # the notes only


async def test_the_owner_answers_the_notes_in_saved_messages(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    messenger = FakeMessenger()
    settings = settings_for(engine_url, tmp_path)
    llm = ScriptedLLM(default="Drafted.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        drafts = twin.app[keys.DRAFTS]
        commands = twin.app[keys.SERVICES]["commands"]
        for chat in (21, 22, 23):
            assert await twin.intake.incoming(incoming("hi?", chat=chat, at=clock.now()))
        await twin.idle()
        await twin.recorder.wait_for("draft.created", count=3)
        await drafts.drain()
        by_chat = {d.peer_id: d for d in await drafts.list()}
        notes = {s.message_id for s in messenger.delivered if s.chat == "me"}
        assert {d.notice_message_id for d in by_chat.values()} == notes

        def answer(chat: int, text: str, *, reply_to: int | None = None) -> OwnerText:
            return OwnerText(
                account="default",
                chat_id=7000,  # the owner's own id: Saved Messages
                message_id=next(ids),
                date=clock.now(),
                text=text,
                saved=True,
                reply_to=reply_to if reply_to is not None else by_chat[chat].notice_message_id,
            )

        ids = iter(range(9000, 9100))
        assert await commands.on_owner_text(answer(21, "+"))
        assert await commands.on_owner_text(answer(22, " - "))
        assert await commands.on_owner_text(answer(23, "Hi! Back in 10 minutes."))
        assert not await commands.on_owner_text(answer(23, "a note to self", reply_to=1))
        assert await commands.on_owner_text(answer(21, "-"))  # decided already: nothing changes
        states = {chat: (await drafts.get(d.id)) for chat, d in by_chat.items()}
        assert {c: (d.state, d.reason) for c, d in states.items()} == {
            21: ("sent", "as written"),
            22: ("skipped", "owner"),
            23: ("sent", "edited"),
        }
        await twin.idle()
        assert messenger.texts(21) == ["Drafted."]
        assert messenger.texts(22) == []
        assert messenger.texts(23) == ["Hi! Back in 10 minutes."]


async def test_a_draft_nobody_decided_is_sent_on_expiry_when_so_configured(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    messenger = FakeMessenger()
    settings = settings_for(engine_url, tmp_path, draft_after_expiry="send")
    llm = ScriptedLLM(default="On my way.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        await drafted(twin, 91, "where are you?")
        await clock.advance(30 * 60)
        sent = (await twin.recorder.wait_for("draft.sent")).data
        assert (sent["reason"], sent["edited"]) == ("on expiry", False)
        await twin.idle()
        assert messenger.texts(91) == ["On my way."]


async def test_a_draft_falling_due_while_the_expiry_pass_runs_is_decided_without_waiting(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Time moves on while the expiry pass reads the next expiry (a slow query, a clock that
    jumped): the loop's next wait is counted from the pass's start, so the draft due by then
    is decided at once, not a second after a moment the clock may never reach."""
    messenger = FakeMessenger()
    settings = settings_for(engine_url, tmp_path)
    llm = ScriptedLLM(default="Soon.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        store = twin.repo
        read = store.next_draft_expiry

        async def read_while_time_moves() -> Any:
            soonest = await read()
            if soonest is not None and clock.now() < soonest:
                await clock.advance(to=soonest)  # due by the time the pass sleeps
            return soonest

        monkeypatch.setattr(store, "next_draft_expiry", read_while_time_moves)
        created = await drafted(twin, 95, "when?")
        expired = (await twin.recorder.wait_for("draft.expired")).data
        assert expired["draft"] == created["draft"]
        assert messenger.texts(95) == []


async def test_the_drafts_api(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = settings_for(engine_url, tmp_path)
    messenger = FakeMessenger()
    llm = ScriptedLLM(default="Tomorrow at 10.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        site = web.TCPSite(twin.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        draft_id = (await drafted(twin, 61, "when can I come?"))["draft"]
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.get(f"{base}/drafts") as response:
                assert response.status == 200
                [listed] = (await response.json())["drafts"]
                assert (listed["id"], listed["chat"], listed["text"]) == (
                    draft_id,
                    61,
                    "Tomorrow at 10.",
                )
            async with http.post(f"{base}/drafts/{draft_id}/send", json={"text": ""}) as response:
                assert response.status == 422  # an empty edit is refused, not sent
            async with http.post(
                f"{base}/drafts/{draft_id}/skip", json={"account": "nobody"}
            ) as response:
                assert response.status == 404  # not that account's draft
            async with http.post(f"{base}/drafts/{draft_id}/send", json={}) as response:
                assert response.status == 200
                body = await response.json()
                assert (body["state"], body["reason"]) == ("sent", "as written")
            async with http.post(f"{base}/drafts/{draft_id}/skip", json={}) as response:
                assert response.status == 409
                assert "sent already" in (await response.json())["error"]["message"]
            async with http.get(f"{base}/drafts?state=all") as response:
                assert [d["state"] for d in (await response.json())["drafts"]] == ["sent"]
            async with http.get(f"{base}/corrections") as response:
                [learned] = (await response.json())["corrections"]
                assert (learned["kind"], learned["context"], learned["owner_text"]) == (
                    "approved",
                    "when can I come?",
                    "Tomorrow at 10.",
                )
            url = f"{base}/corrections/{learned['id']}"
            async with http.delete(url) as response:
                assert response.status == 204
            async with http.delete(url) as response:
                assert response.status == 404
            async with http.get(f"{base}/corrections") as response:
                assert (await response.json())["corrections"] == []
            async with (
                aiohttp.ClientSession() as anonymous,
                anonymous.get(f"{base}/drafts") as response,
            ):
                assert response.status == 401
        await twin.idle()
        assert messenger.texts(61) == ["Tomorrow at 10."]


async def test_an_approved_draft_cut_off_by_a_restart_is_delivered_once(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = settings_for(engine_url, tmp_path)
    messenger = FakeMessenger()
    accounts = FakeAccounts(messenger)
    llm = ScriptedLLM(default="See you at 5.")
    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        draft_id = (await drafted(twin, 51, "when?"))["draft"]
        await twin.app[keys.DRAFTS].drain()  # the draft's note is sent: the gate is the reply's
        # Telegram accepts the bubble, and the daemon is gone before it records that.
        gate = messenger.hold_send(1, after_delivery=True)
        _, reply = await twin.app[keys.DRAFTS].send(draft_id, "See you at 5, at the gate.")
        await gate.entered.wait()
    assert len(llm.calls) == 1

    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        await twin.recorder.wait_for("reply.sent", reply=reply.id)
        await twin.idle()
        assert (await twin.app[keys.DRAFTS].get(draft_id)).state == "sent"
    assert messenger.texts(51) == ["See you at 5, at the gate."]  # once
    assert len(llm.calls) == 1  # the approved text is resumed, never written again


async def test_a_message_arriving_while_an_approved_draft_waits_is_drafted_on_its_own(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    """Found in review: the approved job is the chat's pending reply until the worker takes
    it; the contact's next message must neither join it (the owner's text answers what the
    owner read) nor fail to be planned."""
    settings = settings_for(engine_url, tmp_path)
    messenger = FakeMessenger()
    llm = ScriptedLLM("First answer.", "Second answer.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        drafts = twin.app[keys.DRAFTS]
        first = await drafted(twin, 11, "question one")
        _, approved = await drafts.send(first["draft"], "The owner's answer.")
        # at once, before the worker took the approved job
        assert (await twin.repo.get_reply(approved.id)).state.value == "scheduled"
        assert await twin.intake.incoming(incoming("question two", chat=11, at=clock.now()))
        await twin.idle()
        second = (await twin.recorder.wait_for("draft.created", count=2)).data
        assert second["superseded"] == 0 and second["reply"] != approved.id
        assert messenger.texts(11) == ["The owner's answer."]
        [pending] = await drafts.list()
        assert pending.text == "Second answer."


async def test_a_process_resends_only_the_notes_of_what_it_serves(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    """Notes kept back are listed per process of a cluster (its accounts, or its bots the
    notes go from), so another process's stuck notes never crowd its own out."""
    messenger = FakeMessenger()
    settings = settings_for(engine_url, tmp_path)
    llm = ScriptedLLM(default="Soon.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        created = await drafted(twin, 97, "when?")
        drafts = twin.app[keys.DRAFTS]
        await drafts.drain()
        await drafts.stop()  # its passes would send the note again: the list is what is read
        await twin.repo.set_draft_notice(created["draft"], None)  # as if kept back
        account = (await twin.repo.get_draft(created["draft"])).account_id
        everything = await twin.repo.unnoticed_drafts()
        assert [d.id for d in everything] == [created["draft"]]
        mine = await twin.repo.unnoticed_drafts(accounts={account})
        assert [d.id for d in mine] == [created["draft"]]
        assert await twin.repo.unnoticed_drafts(accounts={account + 1000}) == []
