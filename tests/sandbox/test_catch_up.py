"""Catching up: offline clients, saved sessions and dropped pushes recovered via getDifference."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from telethon import events
from telethon.sessions import SQLiteSession

from twin.sandbox import api_updates
from twin.sandbox.client import restore_session, session_snapshot
from twin.sandbox.server import SandboxServer

from .fixtures import Pair, SandboxClients


async def _collect(client, count: int) -> tuple[asyncio.Event, list[str]]:
    texts: list[str] = []
    done = asyncio.Event()

    @client.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        texts.append(event.raw_text)
        if len(texts) >= count:
            done.set()

    return done, texts


async def test_offline_messages_arrive_after_reconnect_from_saved_session(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients
) -> None:
    b = sandbox_pair.b
    await b.disconnect()
    snapshot = session_snapshot(b)  # StringSession.save() + the pts Telethon kept

    for i in range(3):
        await sandbox_pair.a.send_message(sandbox_pair.bob.id, f"while you were out {i}")

    restored = sandbox_clients.new(restore_session(snapshot), catch_up=True)
    done, texts = await _collect(restored, 3)
    await restored.connect()
    await asyncio.wait_for(done.wait(), 5)
    assert texts == [f"while you were out {i}" for i in range(3)]
    assert (await restored.get_me()).id == sandbox_pair.bob.id


async def test_long_backlog_is_paged_with_difference_slices(
    sandbox: SandboxServer, sandbox_pair: Pair, sandbox_clients: SandboxClients,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api_updates, "DIFFERENCE_PAGE", 5)
    b = sandbox_pair.b
    await b.disconnect()
    snapshot = session_snapshot(b)
    for i in range(12):
        sandbox.send_message(sandbox_pair.alice, sandbox_pair.bob, f"backlog {i}")

    restored = sandbox_clients.new(restore_session(snapshot), catch_up=True)
    done, texts = await _collect(restored, 12)
    await restored.connect()
    await asyncio.wait_for(done.wait(), 5)
    assert texts == [f"backlog {i}" for i in range(12)]
    assert sandbox.calls["updates.GetDifferenceRequest"] >= 2 + 3  # two logins, three pages


async def test_offline_messages_arrive_with_sqlite_session(
    sandbox: SandboxServer, sandbox_clients: SandboxClients, tmp_path: Path
) -> None:
    sandbox.create_user("15550011", "Ann")
    bert = sandbox.create_user("15550012", "Bert")
    session_file = str(tmp_path / "bert")
    client = await sandbox_clients.signed_in(bert.phone, session=SQLiteSession(session_file))
    await client.disconnect()

    for i in range(3):
        sandbox.send_message("15550011", bert, f"offline {i}")

    again = sandbox_clients.new(SQLiteSession(session_file), catch_up=True)
    done, texts = await _collect(again, 3)
    await again.connect()
    await asyncio.wait_for(done.wait(), 5)
    assert texts == [f"offline {i}" for i in range(3)]


async def test_dropped_pushes_are_recovered_through_get_difference(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    count = 30
    done, texts = await _collect(sandbox_pair.b, count + 1)
    sandbox.faults.drop_updates(0.5, seed=1234)
    for i in range(count):
        await sandbox_pair.a.send_message(sandbox_pair.bob.id, f"lossy {i}")
    sandbox.faults.drop_updates(0.0)
    # The next push reveals the pts gap; Telethon waits 0.5 s, then calls getDifference.
    await sandbox_pair.a.send_message(sandbox_pair.bob.id, "final")
    await asyncio.wait_for(done.wait(), 10)
    assert sandbox.faults.dropped > 0
    assert sorted(texts) == sorted([f"lossy {i}" for i in range(count)] + ["final"])
    assert len(texts) == len(set(texts))  # nothing delivered twice
    assert sandbox.calls["updates.GetDifferenceRequest"] >= 3  # 2 logins + at least one gap


async def test_connections_dropped_by_the_server_are_reestablished(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    done, texts = await _collect(sandbox_pair.b, 2)
    assert sandbox.disconnect_user(sandbox_pair.alice) == 1
    # Telethon reconnects on its own (same auth key, new session) and resends.
    await sandbox_pair.a.send_message(sandbox_pair.bob.id, "still here")

    assert sandbox.disconnect_all() == 2
    # After an automatic reconnect Telethon only calls get_me(), which re-subscribes the
    # connection to pushes; wait for both before sending (a push sent earlier would only be
    # recovered at the next gap, exactly like on Telegram).
    await sandbox.wait_for(
        lambda: sandbox.online_sessions(sandbox_pair.alice) == 1
        and sandbox.online_sessions(sandbox_pair.bob) == 1,
        timeout=10,
    )
    await sandbox_pair.a.send_message(sandbox_pair.bob.id, "and again")
    await asyncio.wait_for(done.wait(), 10)
    assert texts == ["still here", "and again"]
