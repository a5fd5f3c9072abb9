"""Owner commands end to end (issue 17 §2): the owner types `.twin …` on their phone (a second
session of the owner's account on the sandbox); the daemon applies it, deletes it for both sides
and acknowledges it in Saved Messages."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from telethon import events, functions

from tests.e2e.conftest import (
    OWNER_PHONE,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from twin import keys

pytestmark = pytest.mark.e2e


async def test_owner_commands_from_the_phone_switch_the_account_and_pause_the_chat(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1", twin={"debounce_seconds": 0})
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    phone = await sandbox_clients.signed_in(OWNER_PHONE)  # the owner's phone
    await phone(functions.contacts.GetContactsRequest(hash=0))
    gone: dict[str, asyncio.Queue[list[int]]] = {"carl": asyncio.Queue(), "phone": asyncio.Queue()}

    @carl.on(events.MessageDeleted)
    async def carl_told(event: events.MessageDeleted.Event) -> None:
        gone["carl"].put_nowait(event.deleted_ids)

    @phone.on(events.MessageDeleted)
    async def phone_told(event: events.MessageDeleted.Event) -> None:
        gone["phone"].put_nowait(event.deleted_ids)

    def saved_messages() -> list[str]:
        return sandbox.messages_from(owner, owner)

    # `.twin off` in the chat with Carl: applied, gone for both sides, acknowledged.
    typed = await phone.send_message(contact.id, ".twin off")
    done = await wait_for_event(daemon, "owner.command")
    assert done["message_id"] == typed.id
    assert (done["command"], done["result"], done["applied"]) == ("off", "mode", True)
    assert done["deleted"] is True and done["acknowledged"] is True
    assert [m.message for m in sandbox.history(owner, contact)] == []
    assert [m.message for m in sandbox.history(contact, owner)] == []
    # Both sides' clients were told (Carl's copy has its own id).
    assert await asyncio.wait_for(gone["phone"].get(), 5) == [typed.id]
    assert len(await asyncio.wait_for(gone["carl"].get(), 5)) == 1
    [ack] = saved_messages()
    assert ack.startswith("twin: off on 'default'") and "`.twin on`" in ack
    status, safety = await daemon.call("GET", "/accounts/default/safety")
    assert status == 200 and (safety["mode"], safety["set_by"]) == ("off", "owner")
    assert safety["reason"].startswith("owner command in chat ***")

    # Carl's next message is not answered: the account is off.
    await carl.send_message(owner.id, "are you there?")
    skipped = await wait_for_event(daemon, "message.skipped")
    assert skipped["reason"] == "account_off"
    # The command was no owner activity: no takeover, nothing stored as the owner's message.
    status, body = await daemon.call("GET", "/chats")
    [chat] = [c for c in body["chats"] if c["id"] == contact.id]
    assert chat["paused_until"] is None
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    assert [m["text"] for m in body["messages"]] == ["are you there?"]

    # `.twin pause 1h` pauses that chat, counted from the command.
    typed = await phone.send_message(contact.id, ".twin   PAUSE 1h")
    done = await wait_for_event(daemon, "owner.command", after=done["id"])
    assert (done["command"], done["result"], done["minutes"]) == ("pause", "paused", 60)
    status, body = await daemon.call("GET", "/chats")
    [chat] = [c for c in body["chats"] if c["id"] == contact.id]
    assert datetime.fromisoformat(chat["paused_until"]) == typed.date + timedelta(hours=1)
    assert "paused in the chat with Carl" in saved_messages()[-1]

    # `.twin on` typed in Saved Messages turns the account back on; the chat stays paused.
    typed = await phone.send_message("me", ".twin on")
    done = await wait_for_event(daemon, "owner.command", after=done["id"])
    assert (done["command"], done["applied"], done["deleted"]) == ("on", True, True)
    status, safety = await daemon.call("GET", "/accounts/default/safety")
    assert (safety["mode"], safety["reason"]) == ("active", "owner command in Saved Messages")
    assert ".twin on" not in saved_messages()  # the command itself is gone
    await carl.send_message(owner.id, "hello?")
    skipped = await wait_for_event(daemon, "message.skipped", after=skipped["id"])
    assert skipped["reason"] == "paused"
    # None of the commands was taken for the owner's activity (a takeover).
    stored = await daemon.app[keys.DATABASE].repo.events_since(0, limit=1000)
    assert [e.type for e in stored if e.type == "owner.activity"] == []
