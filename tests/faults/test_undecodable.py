"""An update the client cannot decode (what a client/server layer mismatch does to every message)
is no longer dropped in silence: a WARNING, a counter in /metrics, a stale `last_update_at`."""

from __future__ import annotations

import logging
import re

import pytest
from telethon.tl.alltlobjects import LAYER

from tests.e2e.conftest import AUTH, login, people, wait_for_event
from twin import keys
from twin.sandbox.faults import UNKNOWN_CONSTRUCTOR
from twin.sandbox.server import SandboxServer


async def test_undecodable_update_is_a_warning_and_a_counter(
    sandbox: SandboxServer, make_daemon, caplog: pytest.LogCaptureFixture
) -> None:
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    with caplog.at_level(logging.INFO, logger="twin.telegram"):
        await login(daemon, sandbox)
    # The client's API layer is in the log from the first connection.
    assert f"connected to Telegram (client API layer {LAYER})" in caplog.text
    account = await daemon.app[keys.ACCOUNTS].get()
    sandbox.send_message(contact, owner, "a normal message")
    first = await wait_for_event(daemon, "message.received")
    before = account.link_status().last_update_at
    assert before is not None

    caplog.clear()
    sandbox.faults.undecodable_pushes(1, to_user=owner.id)
    with caplog.at_level(logging.INFO, logger="twin.telegram"):
        sandbox.send_message(contact, owner, "from a newer layer")
        await account.link.wait_until(lambda state: state.undecodable_updates == 1, 10)
    assert sandbox.faults.garbled == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.name == "twin.telegram"
    assert f"constructor {UNKNOWN_CONSTRUCTOR:08x} is unknown to client API layer {LAYER}" in (
        warning.getMessage()
    )
    assert "from a newer layer" not in caplog.text  # no payload in the log
    assert account.link_status().last_update_at == before  # nothing was delivered

    response = await daemon.client.get("/metrics", headers=AUTH)
    text = await response.text()
    counter = re.search(
        r'^twin_telegram_undecodable_updates_total\{account="default"\} (\S+)$', text, re.M
    )
    assert counter and float(counter.group(1)) == 1
    status, body = await daemon.call("GET", "/auth/status")
    assert body["connected"] is True  # the link is fine: the warning is what tells

    # The next update reveals the gap and Telethon fetches what was dropped.
    sandbox.send_message(contact, owner, "and another")
    second = await wait_for_event(daemon, "message.received", after=first["id"])
    third = await wait_for_event(daemon, "message.received", after=second["id"])
    assert {second["chat"], third["chat"]} == {contact.id}
    assert account.link_status().last_update_at > before
