"""Typing notifications, read receipts, dialogs and history as the stock client sees them."""

from __future__ import annotations

import asyncio

from telethon import events, functions, types

from twin.sandbox.server import SandboxServer

from .fixtures import Pair


async def test_typing_reaches_the_other_side(sandbox_pair: Pair) -> None:
    typing: asyncio.Queue[events.UserUpdate.Event] = asyncio.Queue()

    @sandbox_pair.b.on(events.UserUpdate)
    async def on_user_update(event: events.UserUpdate.Event) -> None:
        if event.action is not None:
            await typing.put(event)

    async with sandbox_pair.a.action(sandbox_pair.bob.id, "typing"):
        event = await asyncio.wait_for(typing.get(), 5)
        assert event.typing
        assert event.user_id == sandbox_pair.alice.id

    cancelled = await asyncio.wait_for(typing.get(), 5)  # leaving action() sends a cancel
    assert cancelled.cancel
    assert not cancelled.typing


async def test_injected_updates_reach_the_client(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    statuses: asyncio.Queue[events.UserUpdate.Event] = asyncio.Queue()

    @sandbox_pair.b.on(events.UserUpdate)
    async def on_user_update(event: events.UserUpdate.Event) -> None:
        await statuses.put(event)

    reached = sandbox.inject(sandbox_pair.bob, types.UpdateUserStatus(
        user_id=sandbox_pair.alice.id, status=types.UserStatusOnline(expires=2_000_000_000)
    ))
    assert reached == 1
    event = await asyncio.wait_for(statuses.get(), 5)
    assert event.user_id == sandbox_pair.alice.id
    assert event.online


async def test_read_receipts_and_dialogs(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    a, b = sandbox_pair.a, sandbox_pair.b
    alice, bob = sandbox_pair.alice, sandbox_pair.bob
    read_by_bob: asyncio.Queue[events.MessageRead.Event] = asyncio.Queue()
    arrived: asyncio.Queue[int] = asyncio.Queue()

    @a.on(events.MessageRead(inbox=False))
    async def on_outbox_read(event: events.MessageRead.Event) -> None:
        await read_by_bob.put(event)

    @b.on(events.NewMessage(incoming=True))
    async def on_new(event: events.NewMessage.Event) -> None:
        await arrived.put(event.id)

    sent = [await a.send_message(bob.id, f"line {i}") for i in range(3)]
    for _ in sent:
        await asyncio.wait_for(arrived.get(), 5)

    dialogs = await b.get_dialogs()
    with_alice = next(d for d in dialogs if d.id == alice.id)
    assert with_alice.unread_count == 3
    assert with_alice.message.message == "line 2"
    assert with_alice.entity.contact and with_alice.entity.mutual_contact

    history = await b.get_messages(alice.id, limit=10)
    assert [m.message for m in history] == ["line 2", "line 1", "line 0"]
    assert all(not m.out and m.sender_id == alice.id for m in history)

    await b.send_read_acknowledge(alice.id, max_id=history[0].id)
    event = await asyncio.wait_for(read_by_bob.get(), 5)
    assert event.outbox
    assert event.max_id == sent[-1].id  # translated into Alice's own message ids
    assert event.is_read(sent[0])

    dialogs = await b.get_dialogs()
    assert next(d for d in dialogs if d.id == alice.id).unread_count == 0
    peer = await b(functions.messages.GetPeerDialogsRequest(
        peers=[types.InputDialogPeer(await b.get_input_entity(alice.id))]
    ))
    assert peer.dialogs[0].read_inbox_max_id == history[0].id
    assert sandbox.user(alice).dialogs[bob.id].read_outbox_max_id == sent[-1].id


async def test_history_paging(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    for i in range(25):
        sandbox.send_message(sandbox_pair.bob, sandbox_pair.alice, f"n{i}")
    newest_first = [m.message async for m in sandbox_pair.a.iter_messages(sandbox_pair.bob.id,
                                                                          wait_time=0)]
    assert newest_first == [f"n{i}" for i in reversed(range(25))]
    oldest_first = await sandbox_pair.a.get_messages(sandbox_pair.bob.id, limit=5, reverse=True)
    assert [m.message for m in oldest_first] == [f"n{i}" for i in range(5)]
    page = await sandbox_pair.a.get_messages(sandbox_pair.bob.id, limit=3, offset_id=20)
    assert len(page) == 3 and all(m.id < 20 for m in page)
    assert page.total == 25
