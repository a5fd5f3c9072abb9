"""One demo run: sandbox server, the daemon logged in as the owner, and the contact's client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from telethon import TelegramClient, events, functions

from twin import keys
from twin.app import create_app
from twin.brain.needs import llm_problems
from twin.config import Settings, load_settings
from twin.errors import TwinError
from twin.sandbox import SandboxServer, signed_in_client

OWNER_PHONE = "15550100"
CONTACT_PHONE = "15550199"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BUILT_IN_SCRIPT = (
    "Hi! Are you around?",
    "Could we meet tomorrow at 10?",
    "Great, see you then!",
)
# What the demo changes so that the twin answers within seconds, at any hour.
OVERRIDES = (
    "always within working hours",
    "human delays shortened to fractions of a second",
    "no voice (speech-to-text and text-to-speech off)",
)


class DemoError(TwinError):
    """The demo could not finish (e.g. a scripted line got no reply in time)."""


def demo_settings(
    server: SandboxServer, workdir: Path, pem: Path, config: Path | None
) -> tuple[Settings, str]:
    """The daemon's settings: the user's config for the persona and the LLM (when it has a
    usable one; else the built-in echo model), the sandbox for Telegram, a temporary data
    directory for everything stored. Returns the settings and the model's description."""
    overrides: dict[str, dict[str, Any]] = {
        "telegram": {
            "api_id": 1,
            "api_hash": "twin-demo",
            "server": f"127.0.0.1:{server.port}",
            "dc_id": server.dc_id,
            "rsa_public_key_file": pem,
            "sweep_interval": 3600,
        },
        "storage": {"data_dir": workdir, "url": f"sqlite+aiosqlite:///{workdir / 'twin.db'}"},
        "security": {"secret_key": secrets.token_urlsafe(32), "key_file": workdir / "secret.key"},
        "api": {"tokens": [secrets.token_urlsafe(32)]},
        "stt": {"provider": "none"},
        "tts": {"provider": "none"},
        "schedule": {"hours": {day: ["00:00-24:00"] for day in DAYS}},
        "humanize": {
            "read_delay_median": 0.4,
            "read_delay_sigma": 0.3,
            "read_delay_min": 0.2,
            "read_delay_max": 1.0,
            "typing_cps": 40.0,
            "typing_min": 0.5,
            "typing_max": 2.0,
            "bubble_pause": 0.3,
        },
        "twin": {"debounce_seconds": 0.5, "debounce_max_seconds": 2.0},
    }
    settings = load_settings(config, **overrides)
    if llm_problems(settings.llm):
        settings = load_settings(config, **overrides, llm={"provider": "echo", "fallback": {}})
        return settings, "the built-in echo model (no LLM is configured: it repeats you)"
    return settings, f"{settings.llm.provider} {settings.llm.model} (from your configuration)"


@contextlib.asynccontextmanager
async def _sandbox() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(fixed_code="12345")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def _daemon(settings: Settings) -> AsyncIterator[web.Application]:
    """The app with its whole lifecycle (database, Telegram, pipeline) and no HTTP listener."""
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


async def _log_in(app: web.Application, phone: str, server: SandboxServer) -> None:
    account = await app[keys.ACCOUNTS].for_login("default")
    await account.request_code("+" + phone)
    code = server.last_code(phone)
    assert code is not None
    await account.verify_code("+" + phone, code)


class _Contact:
    """The contact's Telegram client, printing what it sees of the twin."""

    def __init__(self, client: TelegramClient, owner_id: int, say: Callable[[str], None]) -> None:
        self.client = client
        self.owner_id = owner_id
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self._say = say
        client.add_event_handler(self._on_message, events.NewMessage(incoming=True))
        client.add_event_handler(self._on_read, events.MessageRead(inbox=False))
        client.add_event_handler(self._on_user, events.UserUpdate())

    async def _on_message(self, event: Any) -> None:
        if event.sender_id == self.owner_id:
            self._say(f"twin: {event.raw_text}")
            self.replies.put_nowait(event.raw_text)

    async def _on_read(self, event: Any) -> None:
        self._say("  ✓✓ twin read your message")

    async def _on_user(self, event: Any) -> None:
        if event.user_id == self.owner_id and (event.typing or event.recording):
            self._say("  … twin is " + ("typing" if event.typing else "recording a voice note"))

    async def send(self, text: str) -> None:
        self._say(f"you: {text}")
        await self.client.send_message(self.owner_id, text)


async def run_demo(
    *,
    script: Sequence[str] | None,
    config: Path | None = None,
    timeout: float = 60.0,
    out: TextIO = sys.stdout,
    read_line: Callable[[], str] = sys.stdin.readline,
) -> int:
    """Run the demo: play `script` (exit 0 when every line got a reply) or, without one, let
    the person type as the contact until an empty line at the end of input or `/quit`."""

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="twin-demo-") as tmp:
        workdir = Path(tmp)
        async with _sandbox() as server:
            owner = server.create_user(OWNER_PHONE, "You", username="the_owner")
            contact = server.create_user(CONTACT_PHONE, "Alex", username="alex")
            server.add_contact(owner, contact)
            server.add_contact(contact, owner)
            pem = server.write_public_key(workdir / "sandbox.pem")
            settings, model = demo_settings(server, workdir, pem, config)
            say("twin demo: a sandbox Telegram server runs here; you are Alex, a contact of the")
            say("owner, and the twin answers as the owner. Nothing real is contacted or stored.")
            say(f"Model: {model}.")
            say("For a quick demo: " + "; ".join(OVERRIDES) + ".")
            async with _daemon(settings) as app:
                await _log_in(app, OWNER_PHONE, server)
                client = await signed_in_client(server, CONTACT_PHONE)
                try:
                    await client(functions.contacts.GetContactsRequest(hash=0))  # knows the owner
                    alex = _Contact(client, owner.id, say)
                    if script is not None:
                        return await _play(alex, script, timeout, say)
                    return await _chat(alex, read_line, say)
                finally:
                    await client.disconnect()


async def _play(
    alex: _Contact, script: Sequence[str], timeout: float, say: Callable[[str], None]
) -> int:
    for number, line in enumerate(script, 1):
        await alex.send(line)
        try:
            await asyncio.wait_for(alex.replies.get(), timeout)
        except TimeoutError:
            raise DemoError(f"no reply to line {number} ({line!r}) within {timeout:g} s") from None
        while not alex.replies.empty():  # the other bubbles of the same reply
            alex.replies.get_nowait()
    say(f"Every one of the {len(script)} lines got a reply.")
    return 0


async def _chat(alex: _Contact, read_line: Callable[[], str], say: Callable[[str], None]) -> int:
    say("Type a message and press Enter (Ctrl-D or /quit to stop).")
    while True:
        line = await asyncio.to_thread(read_line)
        if not line or line.strip() == "/quit":
            return 0
        if line.strip():
            await alex.send(line.strip())


def quiet_logging() -> None:
    """Only the twin's own pipeline lines (INFO), as a narrator would; everything else WARNING."""
    logging.basicConfig(level=logging.WARNING, format="  · %(message)s", force=True)
    logging.getLogger("twin.pipeline").setLevel(logging.INFO)
