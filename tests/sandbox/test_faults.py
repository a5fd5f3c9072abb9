"""Injected failures as the stock client surfaces them: RANDOM_ID_DUPLICATE, FLOOD_WAIT, latency."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from telethon import errors, events, functions

from twin.sandbox.server import SandboxServer

from .fixtures import Pair, SandboxClients


async def test_repeated_random_id_is_rejected_and_creates_no_message(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients
) -> None:
    # Telethon treats RANDOM_ID_DUPLICATE (a ServerError) as transient: only
    # raise_last_call_error with few retries surfaces it (it still sleeps 2 s once).
    strict = await sandbox_clients.signed_in(
        sandbox_pair.alice.phone, request_retries=0, raise_last_call_error=True
    )
    await strict(functions.contacts.GetContactsRequest(hash=0))
    peer = await strict.get_input_entity(sandbox_pair.bob.id)
    request = functions.messages.SendMessageRequest(peer=peer, message="exactly once",
                                                    random_id=424242)
    await strict(request)
    with pytest.raises(errors.RandomIdDuplicateError):
        await strict(request)
    texts = [m.message for m in sandbox.history(sandbox_pair.bob, sandbox_pair.alice)]
    assert texts.count("exactly once") == 1


async def test_flood_wait_surfaces_with_the_right_seconds(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients
) -> None:
    client = await sandbox_clients.signed_in(sandbox_pair.alice.phone, flood_sleep_threshold=0)
    await client(functions.contacts.GetContactsRequest(hash=0))
    sandbox.faults.flood_wait("messages.SendMessageRequest", seconds=42, times=1)
    with pytest.raises(errors.FloodWaitError) as caught:
        await client.send_message(sandbox_pair.bob.id, "too fast")
    assert caught.value.seconds == 42
    assert sandbox.history(sandbox_pair.bob, sandbox_pair.alice) == []
    # The fault was single-use: another client is served normally.
    await sandbox_pair.a.send_message(sandbox_pair.bob.id, "fine")
    assert [m.message for m in sandbox.history(sandbox_pair.bob, sandbox_pair.alice)] == ["fine"]


async def test_flood_wait_by_tl_name_applies_to_every_call_until_cleared(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients
) -> None:
    sandbox.faults.flood_wait("users.getFullUser", seconds=3, times=None)
    # Each client remembers a flood wait locally, so ask from two different clients. Note:
    # the per-call flood_sleep_threshold only affects that local check; a FLOOD_WAIT from the
    # server is compared with the *client's* threshold (default 60 s: slept through silently).
    for _ in range(2):
        client = await sandbox_clients.signed_in(sandbox_pair.alice.phone,
                                                 flood_sleep_threshold=0)
        with pytest.raises(errors.FloodWaitError) as caught:
            await client(functions.users.GetFullUserRequest(sandbox_pair.alice.id))
        assert caught.value.seconds == 3
    assert sandbox.calls["users.GetFullUserRequest"] == 2
    sandbox.faults.clear()
    full = await sandbox_pair.a(functions.users.GetFullUserRequest(sandbox_pair.bob.id))
    assert full.users[0].id == sandbox_pair.bob.id


async def test_other_injected_errors_map_to_telethon_classes(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    sandbox.faults.rpc_error("messages.sendMessage", 403, "USER_IS_BLOCKED")
    with pytest.raises(errors.UserIsBlockedError):
        await sandbox_pair.a.send_message(sandbox_pair.bob.id, "hello?")


async def test_added_latency_delays_but_keeps_order(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    received: list[str] = []
    done = asyncio.Event()

    @sandbox_pair.b.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        received.append(event.raw_text)
        if len(received) == 5:
            done.set()

    sandbox.faults.set_latency(0.1)
    started = time.monotonic()
    await sandbox_pair.a.get_me()  # one request/response: delayed once on the way back
    assert time.monotonic() - started >= 0.1
    for i in range(5):
        await sandbox_pair.a.send_message(sandbox_pair.bob.id, str(i))
    await asyncio.wait_for(done.wait(), 5)
    assert received == ["0", "1", "2", "3", "4"]


async def test_unknown_method_gets_a_clear_error(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    with pytest.raises(errors.BadRequestError) as caught:
        await sandbox_pair.a(functions.stickers.CheckShortNameRequest("abc"))
    assert caught.value.message == "METHOD_NOT_SUPPORTED_BY_SANDBOX"
    assert sandbox.unsupported == ["stickers.CheckShortNameRequest"]


async def test_pause_refuses_connections_and_resume_keeps_the_world(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    await sandbox_pair.a.disconnect()
    accepted = sandbox.accepted
    await sandbox.pause()
    assert sandbox.online_sessions(sandbox_pair.bob) == 0  # open connections were closed too
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(sandbox.host, sandbox.port)
    # Sent while the server is "down": stored, delivered once Alice is back.
    sandbox.send_message(sandbox_pair.bob, sandbox_pair.alice, "while you were out")

    await sandbox.resume()
    await sandbox_pair.a.connect()  # the same session: auth key and pts survived the pause
    [message] = await sandbox_pair.a.get_messages(sandbox_pair.bob.id, limit=1)
    assert message.message == "while you were out"
    assert sandbox.accepted == accepted + 1


async def test_undecodable_push_is_dropped_by_the_client_and_recovered_from_the_gap(
    sandbox: SandboxServer, sandbox_pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    from telethon.tl.alltlobjects import tlobjects

    from twin.sandbox.faults import UNKNOWN_CONSTRUCTOR

    assert UNKNOWN_CONSTRUCTOR not in tlobjects
    received: list[str] = []
    both = asyncio.Event()

    @sandbox_pair.a.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        received.append(event.raw_text)
        if len(received) == 2:
            both.set()

    sandbox.faults.undecodable_pushes(1, to_user=sandbox_pair.alice.id)
    with caplog.at_level(logging.INFO, logger="telethon"):
        sandbox.send_message(sandbox_pair.bob, sandbox_pair.alice, "from a newer layer")
        sandbox.send_message(sandbox_pair.bob, sandbox_pair.alice, "next one")  # reveals the gap
        await asyncio.wait_for(both.wait(), 5)
    assert sandbox.faults.garbled == 1
    assert sorted(received) == ["from a newer layer", "next one"]
    assert f"Type {UNKNOWN_CONSTRUCTOR:08x} not found" in caplog.text
