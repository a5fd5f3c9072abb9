"""Exactly-once replies across crashes: `twin run` is SIGKILLed at each pipeline state and
restarted; the contact's side must end with every message answered exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from telethon import events, functions

from tests.e2e.conftest import CONTACT_PHONE, OWNER_PHONE, brain_reply
from tests.e2e.process import DaemonProcess

pytestmark = pytest.mark.e2e

ALL_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def make_process(sandbox, pem: Path, tmp_path: Path, fake, **humanize: Any) -> DaemonProcess:
    config = {
        "telegram": {
            "api_id": 12345,
            "server": f"127.0.0.1:{sandbox.port}",
            "dc_id": sandbox.dc_id,
            "rsa_public_key_file": str(pem),
            "flood_sleep_threshold": 0,
            "request_retries": 1,
            "sweep_interval": 3600,
        },
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": fake.base_url + "/v1",
            "max_retries": 0,
            "timeout": 30,
        },
        "stt": {"provider": "none"},
        "twin": {
            "debounce_seconds": 0,
            "owner_name": "Olga",
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.2,
        },
        "schedule": {"hours": ALL_DAY},
        "humanize": {
            "read_delay_median": 0.0,
            "read_delay_sigma": 0.0,
            "read_delay_min": 0.0,
            "read_delay_max": 0.0,
            "typing_cps": 0.0,
            "bubble_pause": 0.0,
            **humanize,
        },
    }
    secrets = {
        "TWIN_TELEGRAM__API_HASH": "crash-api-hash",
        "TWIN_LLM__API_KEY": "sk-test",
        "TWIN_SECURITY__SECRET_KEY": "crash-secret",
    }
    return DaemonProcess(tmp_path, config, secrets)


class Conversation:
    """The owner, the contact's real Telethon client, and what the contact received."""

    def __init__(self, sandbox, contact_client, owner) -> None:
        self.sandbox = sandbox
        self.client = contact_client
        self.owner = owner
        self.received: list[str] = []
        self.arrived = asyncio.Event()

        @contact_client.on(events.NewMessage(incoming=True, from_users=[owner.id]))
        async def on_message(event):
            self.received.append(event.message.message)
            self.arrived.set()

    async def wait_received(self, count: int, timeout: float = 30.0) -> None:
        async def enough() -> bool:
            return len(self.received) >= count

        await DaemonProcess.until(enough, timeout, f"expected {count} messages: {self.received}")


async def setup(sandbox, sandbox_clients, sandbox_pem, tmp_path, fake, env=None, **humanize):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    contact = sandbox.create_user(CONTACT_PHONE, "Carl", username="carl_contact")
    sandbox.add_contact(owner, contact)
    sandbox.add_contact(contact, owner)
    daemon = make_process(sandbox, sandbox_pem, tmp_path, fake, **humanize)
    daemon.env.update(env or {})
    await daemon.start()
    status, _ = await daemon.call("POST", "/auth/request_code", json={"phone": "+" + OWNER_PHONE})
    assert status == 200, daemon.output()
    code = sandbox.last_code(OWNER_PHONE)
    status, body = await daemon.call(
        "POST", "/auth/verify_code", json={"phone": "+" + OWNER_PHONE, "code": code}
    )
    assert status == 200 and body["status"] == "authorized", body
    carl = await sandbox_clients.signed_in(CONTACT_PHONE)
    await carl(functions.contacts.GetContactsRequest(hash=0))
    return daemon, Conversation(sandbox, carl, owner), contact


async def message_states(daemon: DaemonProcess, chat_id: int) -> list[tuple[str, str]]:
    status, body = await daemon.call("GET", "/messages", params={"chat": chat_id})
    if status != 200:
        return []
    return [(m["direction"], m["state"]) for m in reversed(body["messages"])]


async def test_kill_while_scheduled(sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai):
    daemon, talk, contact = await setup(
        sandbox,
        sandbox_clients,
        sandbox_pem,
        tmp_path,
        fake_openai,
        read_delay_median=1.5,
        read_delay_min=1.5,
        read_delay_max=1.5,
    )
    fake_openai.respond_with(lambda body: brain_reply("answer"))
    await talk.client.send_message(talk.owner.id, "first")

    async def scheduled() -> bool:
        return ("incoming", "scheduled") in await message_states(daemon, contact.id)

    await daemon.until(scheduled, 15, "the reply was never scheduled")
    daemon.kill()
    await daemon.start()
    await talk.wait_received(1)
    assert fake_openai.chat_requests  # generated after the restart
    daemon.terminate()
    assert talk.received == ["answer"]
    assert sandbox.messages_from(talk.owner, contact) == ["answer"]


async def test_kill_while_generating(sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai):
    daemon, talk, contact = await setup(
        sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
    )
    fake_openai.fail_next(hang=True)  # the model never answers this first request
    fake_openai.respond_with(lambda body: brain_reply("generated after restart"))
    await talk.client.send_message(talk.owner.id, "hello")
    await asyncio.wait_for(fake_openai.request_seen.wait(), 15)  # the daemon is generating
    daemon.kill()
    await daemon.start()
    try:
        await talk.wait_received(1)
    except AssertionError as exc:  # what the restarted daemon did, to tell why
        raise AssertionError(f"{exc}\n--- daemon output ---\n{daemon.output()[-6000:]}") from None
    daemon.terminate()
    assert talk.received == ["generated after restart"]


async def test_kill_after_telegram_accepted_but_before_it_was_recorded(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
):
    daemon, talk, contact = await setup(
        sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
    )
    fake_openai.respond_with(lambda body: brain_reply("only once"))
    # Every frame the server writes is delayed: the server stores the message at once, but the
    # daemon learns of its success only later — that window is where we kill it.
    sandbox.faults.set_latency(3.0)
    await talk.client.send_message(talk.owner.id, "hi")
    await sandbox.wait_for(
        lambda: sandbox.messages_from(talk.owner, contact) == ["only once"], timeout=20
    )
    daemon.kill()
    sandbox.faults.set_latency(0.0)
    assert ("outgoing", "sending") in await _states_offline(tmp_path)  # not recorded as sent

    await daemon.start()

    async def recorded() -> bool:
        return ("outgoing", "sent") in await message_states(daemon, contact.id)

    try:
        await daemon.until(recorded, 20, "the resend was not recognised as already sent")
    except AssertionError as exc:  # what the restarted daemon did, to tell why
        raise AssertionError(f"{exc}\n--- daemon output ---\n{daemon.output()[-8000:]}") from None
    await talk.wait_received(1)
    daemon.terminate()
    assert sandbox.messages_from(talk.owner, contact) == ["only once"]  # RANDOM_ID_DUPLICATE
    assert talk.received == ["only once"]


async def test_kill_between_bubbles(sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai):
    daemon, talk, contact = await setup(
        sandbox,
        sandbox_clients,
        sandbox_pem,
        tmp_path,
        fake_openai,
        bubble_max_chars=40,
        bubble_pause=2.0,
    )
    long_reply = (
        "First part of a long answer here.\n\n"
        "Second part comes after a pause.\n\n"
        "Third and last part of it."
    )
    fake_openai.respond_with(lambda body: brain_reply(long_reply))
    await talk.client.send_message(talk.owner.id, "tell me everything")
    await talk.wait_received(1)
    daemon.kill()  # during the pause before the second bubble
    assert len(talk.received) == 1

    await daemon.start()
    await talk.wait_received(3)
    daemon.terminate()
    assert talk.received == [
        "First part of a long answer here.",
        "Second part comes after a pause.",
        "Third and last part of it.",
    ]
    assert len(fake_openai.chat_requests) == 1  # the stored text was resumed, not regenerated


async def test_sigterm_stops_gracefully_within_10_seconds(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
):
    daemon, _, _ = await setup(sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai)
    assert daemon.terminate(timeout=10) == 0
    assert "twin stopped" in daemon.output()


async def _states_offline(tmp_path: Path) -> list[tuple[str, str]]:
    """Read the stopped daemon's database directly (no daemon running to ask)."""
    import sqlalchemy as sa

    from twin.db.engine import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}")
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT direction, state FROM messages"))
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


async def test_kill_after_an_approved_draft_was_accepted_but_before_it_was_recorded(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
):
    """Copilot mode: the owner's edited draft is sent exactly once across a kill -9 in the
    window between Telegram storing it and the daemon recording that — and the model, asked
    once for the draft, is never asked again."""
    draft_mode = {"TWIN_TWIN__MODE": "draft", "TWIN_TWIN__DRAFT_NOTIFY": "none"}
    daemon, talk, contact = await setup(
        sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai, env=draft_mode
    )
    fake_openai.respond_with(lambda body: brain_reply("the twin's draft"))
    await talk.client.send_message(talk.owner.id, "hi")

    async def drafted() -> list[dict]:
        status, body = await daemon.call("GET", "/drafts")
        return body["drafts"] if status == 200 else []

    await daemon.until(drafted, 20, "no draft was written")
    [draft] = await drafted()
    sandbox.faults.set_latency(3.0)  # the daemon hears of the send's success only later
    status, _ = await daemon.call(
        "POST", f"/drafts/{draft['id']}/send", json={"text": "the owner's words"}
    )
    assert status == 200
    await sandbox.wait_for(
        lambda: sandbox.messages_from(talk.owner, contact) == ["the owner's words"], timeout=20
    )
    daemon.kill()
    sandbox.faults.set_latency(0.0)
    assert ("outgoing", "sending") in await _states_offline(tmp_path)

    await daemon.start()

    async def recorded() -> bool:
        return ("outgoing", "sent") in await message_states(daemon, contact.id)

    try:
        await daemon.until(recorded, 20, "the resend was not recognised as already sent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- daemon output ---\n{daemon.output()[-8000:]}") from None
    await talk.wait_received(1)
    daemon.terminate()
    assert sandbox.messages_from(talk.owner, contact) == ["the owner's words"]
    assert talk.received == ["the owner's words"]
    assert len(fake_openai.chat_requests) == 1
