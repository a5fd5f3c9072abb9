"""Multi-session owners, basic groups with mentions and replies, bots and contact flags."""

from __future__ import annotations

import asyncio

import pytest
from telethon import errors, events, functions, types

from twin.sandbox.server import SandboxServer

from .fixtures import Pair, SandboxClients


async def test_own_message_from_another_session_arrives_as_outgoing(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients
) -> None:
    daemon = sandbox_pair.a  # session 1: e.g. the twin daemon
    phone = await sandbox_clients.signed_in(sandbox_pair.alice.phone)  # session 2: the owner
    await phone(functions.contacts.GetContactsRequest(hash=0))
    outgoing: asyncio.Queue[events.NewMessage.Event] = asyncio.Queue()
    incoming: asyncio.Queue[events.NewMessage.Event] = asyncio.Queue()

    @daemon.on(events.NewMessage(outgoing=True))
    async def on_owner_typed(event: events.NewMessage.Event) -> None:
        await outgoing.put(event)

    @sandbox_pair.b.on(events.NewMessage(incoming=True))
    async def on_bob(event: events.NewMessage.Event) -> None:
        await incoming.put(event)

    sent = await phone.send_message(sandbox_pair.bob.id, "I'll answer this one myself")
    seen = await asyncio.wait_for(outgoing.get(), 5)
    assert seen.out
    assert seen.chat_id == sandbox_pair.bob.id
    assert seen.raw_text == "I'll answer this one myself"
    assert seen.id == sent.id  # same account, same id space
    bob_event = await asyncio.wait_for(incoming.get(), 5)
    assert bob_event.sender_id == sandbox_pair.alice.id


async def test_group_mentions_and_replies(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients
) -> None:
    carol = sandbox.create_user("15550031", "Carol", username="carol")
    group = sandbox.create_group("Family", [sandbox_pair.bob, sandbox_pair.alice, carol])
    alice_events: asyncio.Queue[events.NewMessage.Event] = asyncio.Queue()

    @sandbox_pair.a.on(events.NewMessage(incoming=True, chats=[-group.id]))
    async def on_group(event: events.NewMessage.Event) -> None:
        await alice_events.put(event)

    carol_client = await sandbox_clients.signed_in(carol.phone)
    await carol_client.get_dialogs()  # learn the group and its members
    await carol_client.send_message(-group.id, "dinner at 8")
    plain = await asyncio.wait_for(alice_events.get(), 5)
    assert plain.is_group and not plain.mentioned

    await carol_client.send_message(-group.id, "@alice can you bring bread?")
    by_username = await asyncio.wait_for(alice_events.get(), 5)
    assert by_username.mentioned
    assert any(isinstance(e, types.MessageEntityMention) for e in by_username.message.entities)

    await carol_client.send_message(
        -group.id, f"[Alice](tg://user?id={sandbox_pair.alice.id}) and wine?"
    )
    by_entity = await asyncio.wait_for(alice_events.get(), 5)
    assert by_entity.mentioned

    own = await sandbox_pair.a.send_message(-group.id, "sure")
    carol_view = await carol_client.get_messages(-group.id, limit=1)
    await carol_view[0].reply("thanks!")
    reply = await asyncio.wait_for(alice_events.get(), 5)
    assert reply.mentioned  # a reply to one of your messages counts as a mention
    assert reply.reply_to_msg_id == own.id  # translated into Alice's id space
    assert (await reply.get_reply_message()).raw_text == "sure"

    bob_view = [m.message for m in sandbox.history(sandbox_pair.bob, group) if m.message]
    assert bob_view == ["dinner at 8", "@alice can you bring bread?", "Alice and wine?",
                        "sure", "thanks!"]
    participants = await sandbox_pair.a.get_participants(-group.id)
    assert {p.id for p in participants} == {sandbox_pair.alice.id, sandbox_pair.bob.id, carol.id}


async def test_group_created_by_a_client(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    created: asyncio.Queue[events.ChatAction.Event] = asyncio.Queue()

    @sandbox_pair.b.on(events.ChatAction)
    async def on_action(event: events.ChatAction.Event) -> None:
        await created.put(event)

    result = await sandbox_pair.a(functions.messages.CreateChatRequest(
        users=[await sandbox_pair.a.get_input_entity(sandbox_pair.bob.id)], title="Project"
    ))
    chat = result.updates.chats[0]
    event = await asyncio.wait_for(created.get(), 5)
    assert event.created and event.new_title == "Project"
    assert event.chat_id == -chat.id


async def test_bots_are_flagged(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    sandbox.create_user("15550041", "Spam Bot", username="spam_bot", bot=True)
    got: asyncio.Queue[events.NewMessage.Event] = asyncio.Queue()

    @sandbox_pair.a.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        await got.put(event)

    sandbox.send_message("@spam_bot", sandbox_pair.alice, "buy now")
    event = await asyncio.wait_for(got.get(), 5)
    sender = await event.get_sender()
    assert sender.bot and sender.username == "spam_bot"


async def test_contact_flags(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    stranger = sandbox.create_user("15550051", "Stranger", username="stranger")
    fan = sandbox.create_user("15550052", "Fan", username="fan")
    sandbox.add_contact(fan, sandbox_pair.alice)  # one-way: Fan saved Alice

    bob = await sandbox_pair.a.get_entity("bob")
    assert bob.contact and bob.mutual_contact
    other = await sandbox_pair.a.get_entity("stranger")
    assert not other.contact and not other.mutual_contact and other.phone is None

    imported = await sandbox_pair.a(functions.contacts.ImportContactsRequest([
        types.InputPhoneContact(client_id=1, phone="+" + fan.phone, first_name="My",
                                last_name="Fan"),
    ]))
    assert [u.id for u in imported.users] == [fan.id]
    assert imported.users[0].contact and imported.users[0].mutual_contact
    assert imported.users[0].first_name == "My"

    await sandbox_pair.a(functions.contacts.AddContactRequest(
        id=await sandbox_pair.a.get_input_entity("stranger"), first_name="Strange",
        last_name="", phone="",
    ))
    again = (await sandbox_pair.a(functions.users.GetUsersRequest(
        [await sandbox_pair.a.get_input_entity(stranger.id)]
    )))[0]
    assert again.contact and not again.mutual_contact
    contacts = await sandbox_pair.a(functions.contacts.GetContactsRequest(hash=0))
    assert {c.user_id for c in contacts.contacts} == {sandbox_pair.bob.id, fan.id, stranger.id}


async def test_unknown_channel_and_group_ids_are_refused(sandbox_pair: Pair) -> None:
    # Telethon looks a channel's marked id (-100…) up with channels.getChannels; there are no
    # channels in the sandbox, so that answer is CHANNEL_INVALID (and Telethon's a ValueError).
    with pytest.raises(errors.ChannelInvalidError):
        await sandbox_pair.a(
            functions.channels.GetChannelsRequest([types.InputChannel(1234567890, 0)])
        )
    with pytest.raises(ValueError, match="Could not find the input entity"):
        await sandbox_pair.a.get_input_entity(-1001234567890)
    with pytest.raises(errors.ChatIdInvalidError):
        await sandbox_pair.a.send_message(-4242, "hello?")
