"""Copilot drafts and corrections end to end (issue 18 §1–2): in draft mode Carl's message is
answered with a draft, shown in the owner's Saved Messages; the owner, on their phone (a second
session of the owner's account on the sandbox), replies to that note with their own text, and
exactly that text reaches Carl — the model is not asked again. Nothing reaches Carl before the
owner decides. In auto mode, the owner editing or deleting the twin's sent message on the phone
is recorded as a correction."""

from __future__ import annotations

import asyncio
from typing import Any

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
from twin import keys

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

    # the owner writes right after the twin's reply: what Carl got is both, a correction
    # (the cases that record none: tests/services/test_corrections.py)
    fake_openai.queue_reply(brain_reply("Yes, bring it."))
    await carl.send_message(owner.id, "should I bring the receipt?")
    await wait_for_event(daemon, "reply.sent", after=deleted["id"])
    await phone.send_message(contact.id, "and the box too, please")
    added = await wait_for_event(daemon, "correction.recorded", after=deleted["id"])
    assert added["kind"] == "followed_up"

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


async def test_drafts_shown_by_the_twins_bot_are_decided_with_its_buttons(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    """With a bot of the twin's connected (and started once by the owner), each draft comes
    from the bot with Send / Edit / Skip; Edit takes the owner's reply to the bot's message.
    The presses are the owner's decisions: nothing is taken in as a turn of the bot's chat."""
    owner, contact = people(sandbox)
    bot = sandbox.create_user("15550901", "Olga Bot", username="olga_desk_bot", bot=True)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1", twin={"debounce_seconds": 0})
    )
    await login(daemon, sandbox)
    assert (await daemon.call("POST", "/bots", json={"token": bot.bot_token}))[0] == 201
    # draft mode for Olga's own account only (the bot answers its users as usual)
    status, _ = await daemon.call("PUT", "/settings", json={"twin": {"mode": "draft"}})
    assert status == 200
    carl = await contact_client(sandbox_clients)
    phone = await sandbox_clients.signed_in(OWNER_PHONE)
    from_bot: asyncio.Queue = asyncio.Queue()

    @phone.on(events.NewMessage(incoming=True, from_users=bot.id))
    async def on_bot(event: events.NewMessage.Event) -> None:
        from_bot.put_nowait(event.message)

    fake_openai.queue_reply(brain_reply("Hi!"))
    await phone.send_message("@olga_desk_bot", "/start")  # a bot cannot write first
    assert (await asyncio.wait_for(from_bot.get(), 15)).message == "Hi!"

    async def drafted(question: str, answer: str, after: int = 0) -> tuple[Any, dict]:
        fake_openai.queue_reply(brain_reply(answer))
        await carl.send_message(owner.id, question)
        created = await wait_for_event(daemon, "draft.created", after=after)
        note = await asyncio.wait_for(from_bot.get(), 15)
        return note, created

    note, created = await drafted("do you have size M?", "Yes, M is here.")
    assert "Yes, M is here." in note.message and "do you have size M?" in note.message
    labels = [button.text for row in note.buttons for button in row]
    assert labels == ["Send", "Edit", "Skip"]
    # anyone else's press (Carl's user id) decides nothing
    notes = daemon.app[keys.DRAFTS].notes
    refused = await notes.on_button(f"bot-{bot.id}", contact.id, note.buttons[0][0].data)
    assert refused == "Only the owner decides the twin's drafts."
    assert await notes.on_button(f"bot-{bot.id}", owner.id, b"twin:draft:999:send") == (
        "This draft is gone."
    )
    pressed = await note.click(0)
    assert pressed.message == "Sent."
    sent = await wait_for_event(daemon, "reply.sent", after=created["id"])
    [got] = await carl.get_messages(owner.id, limit=1)
    assert got.message == "Yes, M is here."
    again = await note.click(2)  # a decided draft stays decided
    assert again.message == "Already sent."

    asked = len(fake_openai.chat_requests)
    note, created = await drafted("and size L?", "No L, sorry.", after=sent["id"])
    assert (await note.click(1)).message.startswith("Reply to the draft's message")
    await phone.send_message(bot.id, "L comes on Friday!", reply_to=note.id)
    sent = await wait_for_event(daemon, "reply.sent", after=created["id"])
    [got] = await carl.get_messages(owner.id, limit=1)
    assert got.message == "L comes on Friday!"
    assert len(fake_openai.chat_requests) == asked + 1  # the edit asked the model nothing

    # a note whose id the daemon never learned (a resend after a crash): the owner's reply
    # is still matched, by the note's own buttons; "+" sends the draft as written
    note, created = await drafted("any discounts?", "10% for students.", after=sent["id"])
    await daemon.app[keys.DATABASE].repo.set_draft_notice(created["draft"], 0)
    await phone.send_message(bot.id, "+", reply_to=note.id)
    sent = await wait_for_event(daemon, "reply.sent", after=created["id"])
    [got] = await carl.get_messages(owner.id, limit=1)
    assert got.message == "10% for students."

    note, created = await drafted("ok thanks", "You're welcome!", after=sent["id"])
    assert (await note.click(2)).message == "Skipped."
    status, body = await daemon.call("GET", "/drafts", params={"state": "skipped"})
    assert [d["text"] for d in body["drafts"]] == ["You're welcome!"]
    status, body = await daemon.call("GET", "/corrections")
    assert [c["kind"] for c in body["corrections"]] == ["skipped", "approved", "edited", "approved"]
    # none of it was a message to the bot for the twin to answer
    status, chats = await daemon.call("GET", "/chats", params={"account": f"bot-{bot.id}"})
    [chat] = chats["chats"]
    status, messages = await daemon.call(
        "GET", "/messages", params={"account": f"bot-{bot.id}", "chat": chat["id"]}
    )
    assert [m["text"] for m in messages["messages"] if m["direction"] == "incoming"] == ["/start"]


async def test_a_bot_the_owner_never_started_leaves_the_note_in_saved_messages(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    bot = sandbox.create_user("15550902", "Quiet Bot", username="quiet_desk_bot", bot=True)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1", twin={"debounce_seconds": 0})
    )
    await login(daemon, sandbox)
    assert (await daemon.call("POST", "/bots", json={"token": bot.bot_token}))[0] == 201
    await daemon.call("PUT", "/settings", json={"twin": {"mode": "draft"}})
    carl = await contact_client(sandbox_clients)
    fake_openai.queue_reply(brain_reply("On my way."))
    await carl.send_message(owner.id, "where are you?")
    await wait_for_event(daemon, "draft.created")
    await daemon.app[keys.DRAFTS].drain()
    [note] = [n for n in sandbox.messages_from(owner, owner) if "twin drafted" in n]
    assert "On my way." in note and "+ to send it" in note
    assert sandbox.messages_from(bot, owner) == []
