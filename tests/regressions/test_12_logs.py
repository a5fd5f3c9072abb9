"""Issue 12.3: the logs must show the twin working.

At INFO, answering a message logged one httpx line and nothing of the pipeline; every start
printed Alembic's plugin set-up; access lines had neither request id nor route nor duration.
Now the real daemon (`twin run`, text and JSON formats) logs, at INFO, every received message
with its decision (scheduled with its delay and reasons, or not answered with the reason), every
reply sent, failed (reason and kind), retried, cancelled — with the account, the masked chat and
the reply or message id — and keeps library chatter out; the access log names request id, route,
status, duration and what the request was about.
"""

from __future__ import annotations

import json
import re

import pytest
from telethon import functions

from tests.e2e.conftest import CONTACT_PHONE, OWNER_PHONE, brain_reply, people
from tests.e2e.process import DaemonProcess
from tests.e2e.test_crash_safety import ALL_DAY, Conversation
from twin.db import migrate
from twin.logs import mask_chat

pytestmark = pytest.mark.e2e

SEND = "messages.sendMessage"


async def setup_conversation(
    sandbox, sandbox_clients, pem, tmp_path, fake, log_format: str = "text"
) -> tuple[DaemonProcess, Conversation, object]:
    """`twin run` logging at INFO in `log_format`, the owner logged in, the contact's client."""
    owner, contact = people(sandbox)
    config = {
        "telegram": {
            "api_id": 12345,
            "server": f"127.0.0.1:{sandbox.port}",
            "dc_id": sandbox.dc_id,
            "rsa_public_key_file": str(pem),
            "flood_sleep_threshold": 0,
            "request_retries": 0,
            "sweep_interval": 3600,
        },
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": fake.base_url + "/v1",
            "max_retries": 0,
        },
        "stt": {"provider": "none"},
        "twin": {"debounce_seconds": 0, "owner_name": "Olga"},
        "schedule": {"hours": ALL_DAY},
        "humanize": {"enabled": False},
        "logging": {"level": "INFO", "format": log_format},
    }
    secrets = {
        "TWIN_TELEGRAM__API_HASH": "logs-api-hash",
        "TWIN_LLM__API_KEY": "sk-logs-test-key",
        "TWIN_SECURITY__SECRET_KEY": "logs-secret-key",
    }
    daemon = DaemonProcess(tmp_path, config, secrets)
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
    fake.respond_with(lambda body: brain_reply("hello there"))
    return daemon, Conversation(sandbox, carl, owner), contact


async def wait_for_line(daemon: DaemonProcess, needle: str, after: int = 0) -> None:
    """Until the daemon's log (from character `after`) contains `needle`."""
    await daemon.until(
        lambda: needle in daemon.output()[after:], 30, f"the daemon never logged {needle!r}"
    )


async def one_answered_one_skipped_one_failed(sandbox, daemon, talk, contact) -> str:
    """Drive the daemon through an answered message, a skip (chat paused) and a refusal; return
    what it logged."""
    await talk.client.send_message(talk.owner.id, "hi")
    await talk.wait_received(1)
    await wait_for_line(daemon, "sent (1 bubble)")
    status, _ = await daemon.call(
        "GET", "/messages", params={"chat": contact.id}, headers={"X-Request-ID": "logs-test-1"}
    )
    assert status == 200
    status, _ = await daemon.call("POST", f"/chats/{contact.id}/pause", json={})
    assert status == 200
    mark = len(daemon.output())
    await talk.client.send_message(talk.owner.id, "still there?")
    await wait_for_line(daemon, "not answered: paused", mark)
    status, _ = await daemon.call("POST", f"/chats/{contact.id}/resume", json={})
    assert status == 200
    sandbox.faults.rpc_error(SEND, 400, "USER_IS_BLOCKED", times=None)
    mark = len(daemon.output())
    sandbox.send_message(contact, talk.owner, "hello?")  # server side: the fault is the twin's
    await wait_for_line(daemon, "failed (permanent)", mark)
    assert daemon.terminate() == 0
    return daemon.output()


def _check_common(output: str, contact_id: int) -> None:
    assert "httpx" not in output and "HTTP Request" not in output, output
    assert "alembic" not in output and "Context impl" not in output, output
    upgraded = f"database schema upgraded to {migrate.head()} (a new database)"
    assert output.count(upgraded) == 1, output
    # The chat is masked on every line: pipeline, access log (path and fields), control.
    assert str(contact_id) not in output, output
    assert "GET /health" not in output  # probes log at DEBUG


async def test_text_lines_of_an_answered_message(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
) -> None:
    daemon, talk, contact = await setup_conversation(
        sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
    )
    output = await one_answered_one_skipped_one_failed(sandbox, daemon, talk, contact)
    _check_common(output, contact.id)
    chat = re.escape(mask_chat(contact.id) or "")
    head = rf"^\S+ \S+ (?P<level>\w+) +twin\.pipeline: account=default chat={chat}"
    steps = [  # one line for the message and its decision, one for the reply sent
        rf"{head} reply=(?P<reply>\d+): message \d+ received: reply scheduled in \d+\.\d s "
        r"\(recipient rules allow",
        rf"{head} reply=(?P<reply>\d+): sent \(1 bubble\)$",
    ]
    lines = output.splitlines()
    found = []
    position = 0
    for step in steps:  # in this order, each at INFO, all about the same reply
        index, match = next(
            (i, m)
            for i, line in enumerate(lines[position:], position)
            if (m := re.match(step, line))
        )
        assert match.group("level") == "INFO", lines[index]
        found.append(match.groupdict().get("reply"))
        position = index + 1
    assert len(set(found)) == 1, found
    assert re.search(rf"{head} message=\d+: received, not answered: paused \(", output, re.M)
    failed = re.search(
        rf"^\S+ \S+ WARNING +twin\.pipeline: account=default chat={chat} reply=\d+: "
        r"failed \(permanent\): TelegramForbidden: .*USER_IS_BLOCKED",
        output,
        re.M,
    )
    assert failed, output
    assert re.search(rf"twin\.control \[\w+\]: account=default chat={chat}: paused until", output)
    # The access line: request id, method, path, status, duration, route and subject.
    assert re.search(
        r"INFO +twin\.access \[logs-test-1\]: GET /messages 200 \d+\.\d ms route=messages "
        rf"account=default chat={chat} key=token:\S+ remote=127\.0\.0\.1$",
        output,
        re.M,
    ), output
    assert re.search(rf"POST /chats/{chat}/pause 200 \d+\.\d ms route=chat_pause", output)


async def test_json_lines_of_an_answered_message(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
) -> None:
    daemon, talk, contact = await setup_conversation(
        sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai, log_format="json"
    )
    output = await one_answered_one_skipped_one_failed(sandbox, daemon, talk, contact)
    _check_common(output, contact.id)
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    chat = mask_chat(contact.id)
    pipeline = [r for r in records if r["logger"] == "twin.pipeline"]
    reply = next(r for r in pipeline if r.get("event") == "reply.scheduled")["reply"]
    steps = {r["event"]: r for r in pipeline if r.get("reply") == reply}
    assert list(steps) == ["reply.scheduled", "reply.sent"], pipeline
    for record in steps.values():
        assert (record["level"], record["account"], record["chat"]) == ("INFO", "default", chat)
        assert "request_id" not in record  # the login request that connected is long over
    scheduled = steps["reply.scheduled"]
    assert scheduled["action"] == "reply" and isinstance(scheduled["delay_s"], int | float)
    assert isinstance(scheduled["message_id"], int) and "sender" not in scheduled
    assert scheduled["explain"] and "reply scheduled in" in scheduled["message"]
    assert steps["reply.sent"]["bubbles"] == 1
    skipped = next(r for r in pipeline if r.get("event") == "message.skipped")
    assert (skipped["reason"], skipped["chat"]) == ("paused", chat)
    failed = next(r for r in pipeline if r.get("event") == "reply.failed")
    assert (failed["level"], failed["failure"]) == ("WARNING", "permanent")
    assert "USER_IS_BLOCKED" in failed["reason"]
    access = next(r for r in records if r.get("request_id") == "logs-test-1")
    assert access["logger"] == "twin.access"
    assert {k: access[k] for k in ("method", "path", "route", "status", "account", "chat")} == {
        "method": "GET",
        "path": "/messages",
        "route": "messages",
        "status": 200,
        "account": "default",
        "chat": chat,
    }
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    assert access["key"].startswith("token:")  # who called (a configured token), not the token
    paused = next(r for r in records if r.get("route") == "chat_pause")
    assert paused["path"] == f"/chats/{chat}/pause" and paused["chat"] == chat
