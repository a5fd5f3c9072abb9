"""The MTProto server goes down and comes back: the daemon says so truthfully, reconnects with
backoff (one WARNING, one INFO), and every message sent meanwhile is answered exactly once."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from typing import Any

import pytest

from tests.e2e.conftest import AUTH, OWNER_PHONE, fast_pipeline, login, wait_for_event
from twin import keys
from twin.domain.backoff import Backoff
from twin.sandbox.server import SandboxServer

BACKOFF = {"reconnect_backoff_base": 0.05, "reconnect_backoff_max": 0.4}
SEED = 11


def cast(sandbox: SandboxServer, contacts: int) -> tuple[Any, list[Any]]:
    owner = sandbox.create_user(OWNER_PHONE, "Olga", "Owner", username="olga_owner")
    people = []
    for i in range(contacts):
        person = sandbox.create_user(f"1555030{i}", f"Contact{i}", username=f"contact_{i}")
        sandbox.add_contact(owner, person)
        sandbox.add_contact(person, owner)
        people.append(person)
    return owner, people


async def public_get(daemon: Any, path: str) -> tuple[int, Any]:
    response = await daemon.client.get(path)  # no token: /ready is public
    return response.status, await response.json()


async def metrics(daemon: Any) -> str:
    response = await daemon.client.get("/metrics", headers=AUTH)
    assert response.status == 200
    return await response.text()


def sample(text: str, name: str, labels: str = "") -> float:
    """One sample of the text exposition format, by name and exact label set."""
    selector = re.escape(name + (f"{{{labels}}}" if labels else ""))
    match = re.search(rf"^{selector} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


async def replies_settled(daemon: Any) -> None:
    worker = daemon.app[keys.SERVICES]["worker"]
    await asyncio.wait_for(worker.idle.wait(), 15)


async def test_server_down_and_back_loses_and_doubles_nothing(
    sandbox: SandboxServer, make_daemon, fake_openai, caplog: pytest.LogCaptureFixture
) -> None:
    owner, contacts = cast(sandbox, 3)
    daemon = await make_daemon(telegram=BACKOFF, **fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    account = await daemon.app[keys.ACCOUNTS].get()
    link = account.link
    link.rng = random.Random(SEED)  # so the waits can be compared with the policy's own
    sandbox.send_message(contacts[0], owner, "before the outage")
    await wait_for_event(daemon, "reply.sent")
    accepted = sandbox.accepted

    with caplog.at_level(logging.INFO, logger="twin.telegram"):
        await sandbox.pause()
        await link.wait_until(lambda state: not state.connected, 10)

        status, body = await daemon.call("GET", "/auth/status")
        assert status == 200
        assert (body["connected"], body["authorized"], body["reconnects"]) == (False, True, 0)
        status, ready = await public_get(daemon, "/ready")
        assert status == 503 and ready["status"] == "not_ready"
        assert ready["database"]["status"] == "ok"
        [telegram] = ready["telegram"]
        assert (telegram["account"], telegram["status"], telegram["required"]) == (
            "default",
            "down",
            True,
        )
        assert telegram["last_error_at"] is not None
        assert "127.0.0.1" not in str(ready) and OWNER_PHONE not in str(ready)
        assert str(owner.id) not in str(ready)
        assert sample(await metrics(daemon), "twin_telegram_connected", 'account="default"') == 0
        assert sample(await metrics(daemon), "twin_ready") == 0

        # Messages reach the server while the daemon cannot: they wait there for it.
        for i, contact in enumerate(contacts):
            sandbox.send_message(contact, owner, f"while you were away {i}")
        await link.wait_until(lambda state: len(state.delays) >= 5, 15)
        await sandbox.resume()
        await link.wait_until(lambda state: state.connected, 15)

        expected = {
            contacts[0].id: ["echo: before the outage", "echo: while you were away 0"],
            contacts[1].id: ["echo: while you were away 1"],
            contacts[2].id: ["echo: while you were away 2"],
        }

        def answered() -> bool:
            return all(
                len(sandbox.messages_from(owner, c)) >= len(expected[c.id]) for c in contacts
            )

        await sandbox.wait_for(answered, timeout=20)
        await replies_settled(daemon)

    # Exactly once: no reply lost, none doubled.
    assert {c.id: sandbox.messages_from(owner, c) for c in contacts} == expected
    for contact in contacts:
        status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
        assert all(m["state"] == "sent" for m in body["messages"]), body

    # The daemon reconnected once, after growing waits drawn from the policy.
    assert sandbox.accepted == accepted + 1
    policy = Backoff(base=0.05, cap=0.4)
    assert link.delays == policy.delays(len(link.delays), random.Random(SEED))
    ceilings = [policy.ceiling(None)] + [policy.ceiling(d) for d in link.delays[:-1]]
    assert all(0.05 <= d <= c for d, c in zip(link.delays, ceilings, strict=True))
    assert max(link.delays) > policy.ceiling(None)  # the waits grew beyond the first ceiling

    status, body = await daemon.call("GET", "/auth/status")
    assert (body["connected"], body["reconnects"]) == (True, 1)
    assert body["since"] is not None and body["last_update_at"] is not None
    status, ready = await public_get(daemon, "/ready")
    assert status == 200 and ready["status"] == "ready"
    assert ready["telegram"][0]["reconnects"] == 1 and ready["telegram"][0]["error"] is None
    text = await metrics(daemon)
    assert sample(text, "twin_telegram_connected", 'account="default"') == 1
    assert sample(text, "twin_telegram_reconnects_total", 'account="default"') == 1
    assert sample(text, "twin_ready") == 1

    # One WARNING when the outage began, one INFO with its duration when it ended; none of
    # Telethon's per-attempt lines.
    link_logs = [r for r in caplog.records if r.name.startswith(("twin.telegram", "telethon"))]
    warnings = [r.getMessage() for r in link_logs if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "connection to Telegram lost" in warnings[0], warnings
    restored = [r.getMessage() for r in link_logs if "restored" in r.getMessage()]
    assert len(restored) == 1
    assert re.search(r"restored after \d+\.\d s \(\d+ attempt\(s\)\)", restored[0])


async def test_daemon_started_while_telegram_is_down_is_not_ready_until_connected(
    sandbox: SandboxServer, make_daemon, caplog: pytest.LogCaptureFixture
) -> None:
    cast(sandbox, 0)
    daemon = await make_daemon(telegram=BACKOFF)
    await login(daemon, sandbox)
    await daemon.stop()
    await sandbox.pause()

    with caplog.at_level(logging.INFO, logger="twin.telegram"):
        await daemon.start()
        accounts = daemon.app[keys.ACCOUNTS]
        account = await accounts.get(connect=False)
        await account.link.wait_until(lambda state: state.attempts >= 3, 15)
        # Logged in before, so the stored session must be checked before the daemon is ready.
        status, ready = await public_get(daemon, "/ready")
        assert status == 503 and ready["telegram"][0]["required"] is True

        assert not accounts.sweep_done.is_set()
        await sandbox.resume()
        await account.link.wait_until(lambda state: state.connected, 15)
        await asyncio.wait_for(accounts.sweep_done.wait(), 15)  # swept: authorized again
        assert account.authorized

    status, ready = await public_get(daemon, "/ready")
    assert status == 200, ready
    assert ready["telegram"][0]["reconnects"] == 0  # a first connection is not a reconnect
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("twin.telegram", "telethon"))
    ]
    assert len(warnings) == 1 and "cannot connect to Telegram" in warnings[0], warnings
    [connected] = [
        r.getMessage() for r in caplog.records if "connected to Telegram after" in r.getMessage()
    ]
    assert "client API layer" in connected


async def test_a_client_telethon_gave_up_on_is_restarted_and_takes_messages_in(
    sandbox: SandboxServer, make_daemon
) -> None:
    owner, contacts = cast(sandbox, 1)
    # Finite retries: Telethon gives up reconnecting; the accounts' supervisor starts a new
    # client (with backoff, nothing has to use the account), which gets the intake handlers.
    daemon = await make_daemon(telegram={**BACKOFF, "connection_retries": 1})
    await login(daemon, sandbox)
    account = await daemon.app[keys.ACCOUNTS].get()
    await sandbox.pause()
    await account.link.wait_until(lambda state: state.attempts >= 2, 10)
    client = account.client
    with pytest.raises(ConnectionError):  # Telethon gave up
        await asyncio.wait_for(client.disconnected, 10)
    await sandbox.resume()

    sandbox.send_message(contacts[0], owner, "after the restart")
    received = await wait_for_event(daemon, "message.received", timeout=30)
    assert received["chat"] == contacts[0].id
    assert account.client is not client
