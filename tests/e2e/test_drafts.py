"""Copilot drafts and corrections end to end (issue 18 §1–2): in draft mode Carl's message is
answered with a draft, shown in the owner's Saved Messages; the owner, on their phone (a second
session of the owner's account on the sandbox), replies to that note with their own text, and
exactly that text reaches Carl — the model is not asked again. Nothing reaches Carl before the
owner decides. In auto mode, the owner editing or deleting the twin's sent message on the phone
is recorded as a correction."""

from __future__ import annotations

import asyncio

import pytest
from telethon import events, functions

from tests.e2e.conftest import (
    OWNER_PHONE,
    brain_reply,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)

pytestmark = pytest.mark.e2e


async def test_a_draft_answered_in_saved_messages_from_the_phone(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(
            fake_openai.base_url + "/v1", twin={"debounce_seconds": 0, "mode": "draft"}
        )
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    phone = await sandbox_clients.signed_in(OWNER_PHONE)  # the owner's phone
    await phone(functions.contacts.GetContactsRequest(hash=0))
    notes: asyncio.Queue = asyncio.Queue()

    @phone.on(events.NewMessage(chats=[owner.id]))
    async def noted(event: events.NewMessage.Event) -> None:
        notes.put_nowait(event.message)

    fake_openai.queue_reply(brain_reply("A tune-up is 2,500 RUB."))
    await carl.send_message(owner.id, "how much is a tune-up?")
    created = await wait_for_event(daemon, "draft.created")
    note = await asyncio.wait_for(notes.get(), 10)
    assert "A tune-up is 2,500 RUB." in note.message and "how much is a tune-up?" in note.message
    assert sandbox.messages_from(owner, contact) == []  # nothing sent by itself

    await phone.send_message("me", "2,500 RUB, and today it's free coffee!", reply_to=note.id)
    sent = await wait_for_event(daemon, "draft.sent")
    assert (sent["draft"], sent["edited"]) == (created["draft"], True)
    await wait_for_event(daemon, "reply.sent", lambda e: e["reply"] != created["reply"])
    assert sandbox.messages_from(owner, contact) == ["2,500 RUB, and today it's free coffee!"]
    assert len(fake_openai.chat_requests) == 1
    status, body = await daemon.call("GET", "/drafts", params={"state": "all"})
    assert status == 200
    [draft] = body["drafts"]
    assert draft["state"] == "sent"
    assert draft["final_text"] == "2,500 RUB, and today it's free coffee!"


async def test_the_owner_editing_or_deleting_the_twins_message_on_the_phone_is_learned(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1", twin={"debounce_seconds": 0})
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    phone = await sandbox_clients.signed_in(OWNER_PHONE)
    await phone(functions.contacts.GetContactsRequest(hash=0))

    fake_openai.queue_reply(brain_reply("We open at 10."))
    await carl.send_message(owner.id, "when do you open tomorrow?")
    first = await wait_for_event(daemon, "reply.sent")
    [sent] = await phone.get_messages(contact.id, limit=1)
    assert sent.message == "We open at 10."
    await phone.edit_message(contact.id, sent.id, "We open at 9 tomorrow, come early!")
    edited = await wait_for_event(daemon, "correction.recorded")
    assert (edited["kind"], edited["reply"]) == ("phone_edited", first["reply"])

    fake_openai.queue_reply(brain_reply("Sure, any time."))
    await carl.send_message(owner.id, "can I pay by card?")
    await wait_for_event(daemon, "reply.sent", after=first["id"])
    [sent] = await phone.get_messages(contact.id, limit=1)
    await phone.delete_messages(contact.id, [sent.id])
    deleted = await wait_for_event(daemon, "correction.recorded", after=edited["id"])
    assert deleted["kind"] == "phone_deleted"

    # the owner writes right after the twin's reply: what Carl got is both, a correction; the
    # owner's next message follows their own, not the twin's: nothing more
    fake_openai.queue_reply(brain_reply("Yes, bring it."))
    await carl.send_message(owner.id, "should I bring the receipt?")
    await wait_for_event(daemon, "reply.sent", after=deleted["id"])
    await phone.send_message(contact.id, "and the box too, please")
    added = await wait_for_event(daemon, "correction.recorded", after=deleted["id"])
    assert added["kind"] == "followed_up"
    # each owner message is checked, then pauses the chat (the takeover): a sync point
    paused = await wait_for_event(daemon, "chat.paused", after=added["id"])
    await phone.send_message(contact.id, "thanks!")
    await wait_for_event(daemon, "chat.paused", after=paused["id"])

    status, body = await daemon.call("GET", "/corrections")
    assert status == 200
    learned = [
        (c["kind"], c["context"], c["twin_text"], c["owner_text"]) for c in body["corrections"]
    ]
    assert learned == [
        (
            "followed_up",
            "should I bring the receipt?",
            "Yes, bring it.",
            "Yes, bring it.\nand the box too, please",
        ),
        ("phone_deleted", "can I pay by card?", "Sure, any time.", None),
        (
            "phone_edited",
            "when do you open tomorrow?",
            "We open at 10.",
            "We open at 9 tomorrow, come early!",
        ),
    ]
