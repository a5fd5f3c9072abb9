"""What one session of a user sees of the user's other sessions: their read receipts
(updateReadHistoryInbox) and their presence (updateUserStatus) — how a daemon notices its owner
on the phone — and which session set the presence (account.updateStatus is recorded)."""

from __future__ import annotations

import asyncio

from telethon import events, functions

from twin.sandbox.server import SandboxServer

from .fixtures import Pair, SandboxClients


async def test_a_read_on_one_session_reaches_the_others_only(
    sandbox: SandboxServer, sandbox_clients: SandboxClients, sandbox_pair: Pair
) -> None:
    alice, bob = sandbox_pair.alice, sandbox_pair.bob
    daemon = sandbox_pair.b  # Bob's first session
    phone = await sandbox_clients.signed_in(bob.phone)  # Bob's second device
    await phone(functions.contacts.GetContactsRequest(hash=0))
    reads: dict[str, asyncio.Queue[events.MessageRead.Event]] = {}
    arrived: dict[str, asyncio.Queue[int]] = {}
    for name, client in (("daemon", daemon), ("phone", phone)):
        reads[name], arrived[name] = asyncio.Queue(), asyncio.Queue()
        client.add_event_handler(lambda e, q=reads[name]: q.put(e), events.MessageRead(inbox=True))
        client.add_event_handler(
            lambda e, q=arrived[name]: q.put(e.id), events.NewMessage(incoming=True)
        )

    await sandbox_pair.a.send_message(bob.id, "are you there?")
    first = await asyncio.wait_for(arrived["phone"].get(), 5)
    await asyncio.wait_for(arrived["daemon"].get(), 5)

    await phone.send_read_acknowledge(alice.id, max_id=first)
    seen = await asyncio.wait_for(reads["daemon"].get(), 5)
    assert (seen.chat_id, seen.max_id, seen.outbox) == (alice.id, first, False)

    # The reader itself is not told (its result carries the pts): pushes to one session keep
    # their order, so a read pushed to the phone would have come before this message.
    await sandbox_pair.a.send_message(bob.id, "hello?")
    await asyncio.wait_for(arrived["phone"].get(), 5)
    assert reads["phone"].empty()


async def test_presence_reaches_the_users_other_sessions_and_is_recorded(
    sandbox: SandboxServer, sandbox_clients: SandboxClients, sandbox_pair: Pair
) -> None:
    bob = sandbox_pair.bob
    daemon = sandbox_pair.b
    phone = await sandbox_clients.signed_in(bob.phone)
    statuses: asyncio.Queue[events.UserUpdate.Event] = asyncio.Queue()
    daemon.add_event_handler(statuses.put, events.UserUpdate(chats=[bob.id]))

    await phone(functions.account.UpdateStatusRequest(offline=False))
    online = await asyncio.wait_for(statuses.get(), 5)
    assert online.user_id == bob.id and online.online
    await phone(functions.account.UpdateStatusRequest(offline=True))
    offline = await asyncio.wait_for(statuses.get(), 5)
    assert not offline.online and offline.last_seen is not None

    assert [(s.user_id, s.auth_key_id, s.offline) for s in sandbox.status_updates] == [
        (bob.id, phone.session.auth_key.key_id, False),
        (bob.id, phone.session.auth_key.key_id, True),
    ]
