"""End-to-end fixtures: the sandbox MTProto server, a contact account, and the real daemon app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from tests.db.conftest import _execute
from twin.api.server import MAX_LINE_SIZE
from twin.app import Adapters, create_app
from twin.config import Settings, load_settings
from twin.sandbox.server import SandboxServer

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOKEN = "e2e-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OWNER_PHONE = "15550100"
CONTACT_PHONE = "15550200"


def daemon_settings(sandbox: SandboxServer, pem: Path, tmp_path: Path, **sections: Any) -> Settings:
    base: dict[str, dict[str, Any]] = {
        "telegram": {
            "api_id": 12345,
            "api_hash": "e2e-api-hash",
            "server": f"127.0.0.1:{sandbox.port}",
            "dc_id": sandbox.dc_id,
            "rsa_public_key_file": pem,
            "flood_sleep_threshold": 0,
            "request_retries": 1,
            "sweep_interval": 3600,
        },
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        "security": {"secret_key": "e2e-secret-key"},
        "api": {"tokens": [TOKEN]},
        "stt": {"provider": "none"},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return load_settings(None, **base)


class Daemon:
    """The real app (create_app) served on loopback; `restart()` = stop + start, same database."""

    def __init__(self, settings: Settings, adapters: Adapters | None = None) -> None:
        self.settings = settings
        self.adapters = adapters
        self.client: TestClient | None = None

    async def start(self) -> TestClient:
        self.app = create_app(self.settings, adapters=self.adapters)
        server = TestServer(self.app)
        client = TestClient(server)
        try:
            await server.start_server(max_line_size=MAX_LINE_SIZE)  # as `twin run` serves
            await client.start_server()
        except BaseException:
            await client.close()
            raise
        self.client = client
        return client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def restart(self) -> TestClient:
        await self.stop()
        return await self.start()

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        assert self.client is not None
        response = await self.client.request(method, path, headers=AUTH, **kwargs)
        return response.status, await response.json()


MakeDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def make_daemon(
    sandbox: SandboxServer, sandbox_pem: Path, tmp_path: Path
) -> AsyncIterator[MakeDaemon]:
    daemons: list[Daemon] = []

    async def make(adapters: Adapters | None = None, **sections: Any) -> Daemon:
        daemon = Daemon(daemon_settings(sandbox, sandbox_pem, tmp_path, **sections), adapters)
        await daemon.start()
        daemons.append(daemon)
        return daemon

    yield make
    for daemon in daemons:
        await daemon.stop()


async def login(daemon: Daemon, sandbox: SandboxServer, phone: str = OWNER_PHONE) -> dict:
    status, body = await daemon.call("POST", "/auth/request_code", json={"phone": "+" + phone})
    assert status == 200, body
    code = sandbox.last_code(phone)
    status, body = await daemon.call(
        "POST", "/auth/verify_code", json={"phone": "+" + phone, "code": code}
    )
    assert status == 200, body
    return body


async def wait_for_event(
    daemon: Daemon,
    type_: str,
    predicate: Callable[[dict], bool] = lambda _: True,
    *,
    after: int = 0,
    timeout: float = 10.0,
) -> dict:
    """The first stored event of `type_` (newer than `after`) matching `predicate`.

    Waits on the daemon's event notifications, never on sleeps.
    """
    import asyncio

    from twin import keys

    events = daemon.app[keys.EVENTS]
    repo = daemon.app[keys.DATABASE].repo
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = after
    while True:
        for event in await repo.events_since(seen, limit=1000):
            seen = event.id
            if event.type == type_ and predicate(event.data):
                return {"id": event.id, "type": event.type, **event.data}
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no {type_} event within {timeout} s")
        await events.wait_after(seen, remaining)


async def count_events(daemon: Daemon, type_: str) -> int:
    from twin import keys

    repo = daemon.app[keys.DATABASE].repo
    return sum(1 for e in await repo.events_since(0, limit=100_000) if e.type == type_)


def fast_pipeline(llm_base_url: str, **sections: Any) -> dict[str, dict[str, Any]]:
    """Sections for a daemon that answers quickly: tiny human delays, always open."""
    base: dict[str, dict[str, Any]] = {
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": llm_base_url,
            "api_key": "sk-test",
            "max_retries": 0,
            "timeout": 5,
        },
        "twin": {
            "debounce_seconds": 0.2,
            "debounce_max_seconds": 2,
            "owner_name": "Olga",
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.5,
        },
        "schedule": {"hours": {day: ["00:00-24:00"] for day in DAYS}},
        "humanize": {
            "read_delay_median": 0.05,
            "read_delay_sigma": 0.1,
            "read_delay_min": 0.0,
            "read_delay_max": 0.2,
            "typing_cps": 200.0,
            "typing_min": 0.05,
            "typing_max": 0.3,
            "bubble_pause": 0.05,
        },
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


def people(sandbox: SandboxServer) -> tuple[Any, Any]:
    """The owner (Olga) and a contact (Carl) who have saved each other."""
    owner = sandbox.create_user(OWNER_PHONE, "Olga", "Owner", username="olga_owner")
    contact = sandbox.create_user(CONTACT_PHONE, "Carl", "Contact", username="carl_contact")
    sandbox.add_contact(owner, contact)
    sandbox.add_contact(contact, owner)
    return owner, contact


async def contact_client(sandbox_clients: Any) -> Any:
    """Carl's stock Telethon client, signed in, with his contacts (the owner) cached."""
    from telethon import functions

    client = await sandbox_clients.signed_in(CONTACT_PHONE)
    await client(functions.contacts.GetContactsRequest(hash=0))
    return client


def brain_reply(text: str, **flags: Any) -> dict[str, Any]:
    """A structured model answer, as the fake LLM should return it."""
    return {
        "text": text,
        "requires_human": False,
        "intent": "chat",
        "confidence": 0.9,
        "end_conversation": False,
        **flags,
    }


POSTGRES_ENV = "TWIN_TEST_POSTGRES_URL"


@pytest.fixture
async def postgres_database():
    """A database of its own on the local PostgreSQL (dropped afterwards)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    name = f"twin_fault_{uuid.uuid4().hex[:8]}"
    await _execute(base, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name)
    finally:
        await _execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
