"""Issue 11.13: a CLI command must not swallow the messages that arrive while it runs, and
`twin run` plans stored messages that were never decided on.

Before the fix `twin style build` and `twin login` connected with intake handlers but no
pipeline: messages were stored as `received` with no decision, Telegram's update state moved
past them, and the next `twin run` treated them as handled. They were never answered.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from tests.e2e.conftest import (
    contact_client,
    daemon_settings,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from tests.e2e.process import DaemonProcess
from twin.db.engine import database
from twin.domain.models import ChatKind, IncomingMessage, Sender


async def _answered(daemon, contact_id: int) -> list[str]:
    """The states of the chat's incoming messages (every one ends `sent` when answered)."""
    status, body = await daemon.call("GET", f"/messages?chat={contact_id}")
    assert status == 200, body
    return [m["state"] for m in body["messages"] if m["direction"] == "incoming"]


async def _wait_all_answered(daemon, contact_id: int, count: int) -> None:
    after = 0
    while True:
        states = await _answered(daemon, contact_id)
        if len(states) == count and all(state == "sent" for state in states):
            return
        event = await wait_for_event(daemon, "reply.sent", after=after, timeout=15)
        after = event["id"]


async def test_messages_sent_during_twin_style_build_are_answered_by_the_next_run(
    sandbox, sandbox_clients, sandbox_pem, tmp_path: Path, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    sections = fast_pipeline(fake_openai.base_url + "/v1")
    daemon = await make_daemon(**sections)
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "first")
    await wait_for_event(daemon, "reply.sent")
    await daemon.stop()

    settings = daemon_settings(sandbox, sandbox_pem, tmp_path, **sections)
    config = {
        "telegram": {
            "api_id": settings.telegram.api_id,
            "server": settings.telegram.server,
            "dc_id": settings.telegram.dc_id,
            "rsa_public_key_file": str(sandbox_pem),
        },
        "storage": {"url": settings.storage.url},
        "stt": {"provider": "none"},
    }
    (tmp_path / "cli.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update(TWIN_TELEGRAM__API_HASH="e2e-api-hash", TWIN_SECURITY__SECRET_KEY="e2e-secret-key")
    sandbox.faults.set_latency(0.2)  # the build takes a few seconds: messages arrive meanwhile
    build = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twin",
        "style",
        "build",
        "--limit",
        "5",
        "--config",
        "cli.toml",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    owner_connected = lambda: any(  # noqa: E731
        c.user_id == owner.id and not c.closed for c in sandbox.connections
    )
    await DaemonProcess.until(owner_connected, 30, "twin style build did not connect")
    await carl.send_message(owner.id, "are you free tomorrow?")
    await carl.send_message(owner.id, "say at 10?")
    assert sandbox.online_sessions(owner) == 0  # the command asked Telegram for no pushes
    _, err = await asyncio.wait_for(build.communicate(), 60)
    assert build.returncode == 0, err.decode()
    sandbox.faults.set_latency(0)

    async with database(settings) as db:  # the command stored nothing of them
        account_id = (await db.repo.get_account("default")).id
        chat = await db.repo.get_chat_by_peer(account_id, contact.id)
        incoming = [
            m
            for m in await db.repo.history(account_id, chat.id, limit=10)
            if m.direction.value == "incoming"
        ]
        assert [m.text for m in incoming] == ["first"]

    await daemon.start()
    await _wait_all_answered(daemon, contact.id, 3)


async def test_twin_run_plans_stored_messages_that_have_no_decision(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    from twin.services.directory import AccountDirectory
    from twin.services.events import EventLog
    from twin.services.intake import Intake

    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "first")
    await wait_for_event(daemon, "reply.sent")
    await daemon.stop()

    await carl.send_message(owner.id, "still there?")
    tg_id = sandbox.history(owner, contact)[-1].id
    # What an older `twin style build` did with it: stored, without any decision (an intake
    # with no pipeline attached).
    async with database(daemon.settings) as db:
        directory = AccountDirectory(db.repo)
        await Intake(db.repo, EventLog(db.repo), directory).incoming(
            IncomingMessage(
                account="default",
                chat_id=contact.id,
                chat_kind=ChatKind.PRIVATE,
                message_id=tg_id,
                sender=Sender(contact.id, "Carl", "carl_contact", True, False),
                date=datetime.now(UTC),
                text="still there?",
            )
        )
        account_id = await directory.id_of("default")
        chat = await db.repo.get_chat_by_peer(account_id, contact.id)
        record = await db.repo.get_message_by_tg(account_id, chat.id, tg_id)
        assert record.state.value == "received" and record.reply_id is None

    await daemon.start()
    await wait_for_event(daemon, "message.recovered")
    await _wait_all_answered(daemon, contact.id, 2)
