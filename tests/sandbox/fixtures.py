"""Pytest fixtures for the sandbox, importable from any conftest.py.

Usage in a conftest::

    from tests.sandbox.fixtures import (  # noqa: F401
        sandbox, sandbox_clients, sandbox_pair, sandbox_pem, voice_note_ogg,
    )

Why a plain module instead of tests/sandbox/conftest.py only: tests/e2e needs the same
server and client plumbing, and fixtures defined in a sibling directory's conftest are not
visible there. Teardown order matters under `filterwarnings = error`: clients disconnect
before the server stops, so no transport is left open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telethon import TelegramClient, functions

from twin.sandbox.client import make_client, signed_in_client
from twin.sandbox.media import make_voice_note
from twin.sandbox.server import SandboxServer
from twin.sandbox.state import Account


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """A started sandbox server on 127.0.0.1 (ephemeral port); fails the test on server bugs."""
    server = SandboxServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    if server.internal_errors:
        pytest.fail("sandbox server internal errors:\n" + "\n".join(server.internal_errors))


class SandboxClients:
    """Creates clients for one sandbox and disconnects all of them at teardown."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.clients: list[TelegramClient] = []

    def new(self, session: Any = None, **kwargs: Any) -> TelegramClient:
        """A routed but not yet connected client (tracked for teardown)."""
        client = make_client(self.server, session, **kwargs)
        self.clients.append(client)
        return client

    async def signed_in(self, phone: str, **kwargs: Any) -> TelegramClient:
        """A connected client logged in by code (see `client.signed_in_client`)."""
        client = await signed_in_client(self.server, phone, **kwargs)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            if client.is_connected():
                await client.disconnect()
        self.clients.clear()


@pytest.fixture
async def sandbox_clients(sandbox: SandboxServer) -> AsyncIterator[SandboxClients]:
    """Factory: `sandbox_clients.new(...)` / `await sandbox_clients.signed_in(phone, ...)`."""
    factory = SandboxClients(sandbox)
    try:
        yield factory
    finally:
        await factory.close()


@dataclass
class Pair:
    """Two signed-in accounts that have each other as contacts."""

    alice: Account
    bob: Account
    a: TelegramClient  # Alice's client
    b: TelegramClient  # Bob's client


@pytest.fixture
async def sandbox_pair(sandbox: SandboxServer, sandbox_clients: SandboxClients) -> Pair:
    """Alice (+15550001, @alice) and Bob (+15550002, @bob): mutual contacts, signed in, and
    each client has the other in its entity cache (via contacts.getContacts)."""
    alice = sandbox.create_user("15550001", "Alice", "A", username="alice")
    bob = sandbox.create_user("15550002", "Bob", "B", username="bob")
    sandbox.add_contact(alice, bob)
    sandbox.add_contact(bob, alice)
    a = await sandbox_clients.signed_in(alice.phone)
    b = await sandbox_clients.signed_in(bob.phone)
    # Like a real app: fetching contacts puts their access hashes in the session cache.
    await a(functions.contacts.GetContactsRequest(hash=0))
    await b(functions.contacts.GetContactsRequest(hash=0))
    return Pair(alice, bob, a, b)


@pytest.fixture
def sandbox_pem(sandbox: SandboxServer, tmp_path: Path) -> Path:
    """The server's public key written as a PKCS#1 PEM file (for daemon configs)."""
    return sandbox.write_public_key(tmp_path / "sandbox_rsa.pem")


@pytest.fixture(scope="session")
def voice_note_ogg() -> bytes:
    """A 1.5 s OGG/Opus voice note synthesised with PyAV."""
    return make_voice_note(1.5)
