"""Private text messages between two stock clients, events in both directions."""

from __future__ import annotations

import asyncio

from telethon import events, types

from twin.sandbox.server import SandboxServer

from .fixtures import Pair

ROUND_TRIPS = 500


async def test_reply_round_trips_lose_nothing(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    a, b = sandbox_pair.a, sandbox_pair.b
    replies: asyncio.Queue[str] = asyncio.Queue()

    @b.on(events.NewMessage(incoming=True))
    async def bob_answers(event: events.NewMessage.Event) -> None:
        assert event.sender_id == sandbox_pair.alice.id
        await event.reply("pong " + event.raw_text.removeprefix("ping "))

    @a.on(events.NewMessage(incoming=True))
    async def alice_collects(event: events.NewMessage.Event) -> None:
        await replies.put(event.raw_text)

    bob = await a.get_input_entity(sandbox_pair.bob.id)
    for i in range(ROUND_TRIPS):
        await a.send_message(bob, f"ping {i}")
        assert await asyncio.wait_for(replies.get(), 5) == f"pong {i}"

    assert replies.empty()
    texts = [m.message for m in sandbox.history(sandbox_pair.alice, sandbox_pair.bob)]
    assert len(texts) == 2 * ROUND_TRIPS
    assert texts[:4] == ["ping 0", "pong 0", "ping 1", "pong 1"]
    # Each account numbers its own copies; Bob's box mirrors Alice's.
    bob_side = sandbox.history(sandbox_pair.bob, sandbox_pair.alice)
    assert [m.message for m in bob_side] == texts
    assert [m.out for m in bob_side[:2]] == [False, True]
    # Replies point at the right message in each account's own id space.
    first_pong = sandbox.history(sandbox_pair.alice, sandbox_pair.bob)[1]
    assert first_pong.reply_to.reply_to_msg_id == sandbox.history(
        sandbox_pair.alice, sandbox_pair.bob
    )[0].id


async def test_pipelined_sends_arrive_in_order(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    a, b = sandbox_pair.a, sandbox_pair.b
    received: list[str] = []
    done = asyncio.Event()
    count = 200

    @b.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        received.append(event.raw_text)
        if len(received) == count:
            done.set()

    bob = await a.get_input_entity(sandbox_pair.bob.id)
    await asyncio.gather(*(a.send_message(bob, f"m{i}") for i in range(count)))
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(received, key=lambda t: int(t[1:])) == [f"m{i}" for i in range(count)]
    assert len(sandbox.history(sandbox_pair.bob, sandbox_pair.alice)) == count


async def test_long_message_is_gzipped_by_the_client_and_stored_intact(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    text = " ".join(["lorem ipsum"] * 300)  # > 512 bytes: Telethon sends it gzip_packed
    got: asyncio.Queue[str] = asyncio.Queue()

    @sandbox_pair.b.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        await got.put(event.raw_text)

    sent = await sandbox_pair.a.send_message(sandbox_pair.bob.id, text)
    assert sent.message == text
    assert await asyncio.wait_for(got.get(), 5) == text


async def test_short_update_form_is_understood(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    sandbox.short_updates = True
    got: asyncio.Queue[events.NewMessage.Event] = asyncio.Queue()

    @sandbox_pair.b.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        await got.put(event)

    await sandbox_pair.a.send_message(sandbox_pair.bob.id, "short and sweet")
    event = await asyncio.wait_for(got.get(), 5)
    assert event.raw_text == "short and sweet"
    assert isinstance(event.original_update, types.UpdateShortMessage)
    assert event.sender_id == sandbox_pair.alice.id
    assert (await event.get_sender()).first_name == "Alice"  # from Bob's entity cache


async def test_edit_and_delete_reach_the_peer(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    a, b = sandbox_pair.a, sandbox_pair.b
    edited: asyncio.Queue[str] = asyncio.Queue()
    deleted: asyncio.Queue[list[int]] = asyncio.Queue()
    incoming: asyncio.Queue[int] = asyncio.Queue()

    @b.on(events.NewMessage(incoming=True))
    async def on_new(event: events.NewMessage.Event) -> None:
        await incoming.put(event.id)

    @b.on(events.MessageEdited)
    async def on_edit(event: events.MessageEdited.Event) -> None:
        await edited.put(event.raw_text)

    @b.on(events.MessageDeleted)
    async def on_delete(event: events.MessageDeleted.Event) -> None:
        await deleted.put(event.deleted_ids)

    message = await a.send_message(sandbox_pair.bob.id, "frist")
    bob_id = await asyncio.wait_for(incoming.get(), 5)
    await a.edit_message(sandbox_pair.bob.id, message.id, "first")
    assert await asyncio.wait_for(edited.get(), 5) == "first"
    assert sandbox.history(sandbox_pair.bob, sandbox_pair.alice)[-1].message == "first"

    await a.delete_messages(sandbox_pair.bob.id, [message.id], revoke=True)
    assert await asyncio.wait_for(deleted.get(), 5) == [bob_id]
    assert sandbox.history(sandbox_pair.bob, sandbox_pair.alice) == []
