"""Telegram refuses: the API answers with the refusal's own status and Telegram's message, and the
reply pipeline fails a permanently refused reply at once while it retries a transient error."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.conftest import fast_pipeline, login, people, wait_for_event
from twin import keys
from twin.sandbox.server import SandboxServer

SEND = "messages.sendMessage"


@pytest.mark.parametrize(
    ("code", "message", "status", "type_"),
    [
        (400, "USER_IS_BLOCKED", 403, "forbidden"),
        (400, "YOU_BLOCKED_USER", 403, "forbidden"),
        (403, "CHAT_WRITE_FORBIDDEN", 403, "forbidden"),
        (403, "USER_PRIVACY_RESTRICTED", 403, "forbidden"),
        (400, "PEER_ID_INVALID", 422, "validation_error"),
        (400, "CHAT_ID_INVALID", 422, "validation_error"),
        (400, "INPUT_USER_DEACTIVATED", 404, "not_found"),
        (400, "INPUT_METHOD_INVALID", 502, "upstream_error"),
        (400, "A_REFUSAL_NOBODY_KNOWS_YET", 502, "upstream_error"),
        (500, "INTERNAL", 503, "unavailable"),
    ],
)
async def test_send_message_answers_each_refusal_with_its_status_and_reason(
    sandbox: SandboxServer,
    make_daemon,
    caplog: pytest.LogCaptureFixture,
    code: int,
    message: str,
    status: int,
    type_: str,
) -> None:
    owner, contact = people(sandbox)
    # request_retries 0: Telethon retries a 500 itself (2 s apart) before raising it.
    daemon = await make_daemon(telegram={"request_retries": 0})
    await login(daemon, sandbox)
    sandbox.faults.rpc_error(SEND, code, message)
    with caplog.at_level(logging.INFO, logger="twin"):
        answered, body = await daemon.call(
            "POST",
            "/send_message",
            json={"chat": "@carl_contact", "text": "hello?", "allow_first_contact": True},
        )
    assert (answered, body["error"]["type"]) == (status, type_), body
    if status != 503:
        # Telegram's own reason travels with the error, and into the log.
        assert {"field": "telegram", "error": message} in body["error"]["details"]
        assert f"Telegram refused SendMessageRequest: {message}" in caplog.text
    if status == 422:
        assert body["error"]["details"][0]["field"] == "chat"
    assert sandbox.messages_from(owner, contact) == []

    answered, body = await daemon.call(  # single-use fault: the next send goes through
        "POST",
        "/send_message",
        json={"chat": "@carl_contact", "text": "hello again", "allow_first_contact": True},
    )
    assert answered == 200 and sandbox.messages_from(owner, contact) == ["hello again"]


async def test_slow_mode_is_429_with_retry_after(sandbox: SandboxServer, make_daemon) -> None:
    from tests.e2e.conftest import AUTH

    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    sandbox.faults.rpc_error(SEND, 420, "SLOWMODE_WAIT_17")
    response = await daemon.client.post(
        "/send_message",
        json={"chat": "@carl_contact", "text": "x", "allow_first_contact": True},
        headers=AUTH,
    )
    assert response.status == 429 and response.headers["Retry-After"] == "17"


async def test_a_blocked_reply_fails_at_once_with_telegrams_reason(
    sandbox: SandboxServer, sandbox_clients, make_daemon, fake_openai
) -> None:
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    sandbox.faults.rpc_error(SEND, 400, "USER_IS_BLOCKED", times=None)

    sandbox.send_message(contact, owner, "are you there?")
    failed = await wait_for_event(daemon, "reply.failed")
    reply = await daemon.app[keys.DATABASE].repo.get_reply(failed["reply"])
    assert reply.attempts == 1  # not retried: no retry changes a block
    assert sandbox.calls["messages.SendMessageRequest"] == 1
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    [incoming] = [m for m in body["messages"] if m["direction"] == "incoming"]
    assert incoming["state"] == "failed"
    assert "USER_IS_BLOCKED" in incoming["state_reason"]
    assert await _count(daemon, "reply.retry") == 0


async def test_a_transient_telegram_error_is_retried_and_sent_once(
    sandbox: SandboxServer, make_daemon, fake_openai
) -> None:
    owner, contact = people(sandbox)
    daemon = await make_daemon(
        telegram={"request_retries": 0}, **fast_pipeline(fake_openai.base_url + "/v1")
    )
    await login(daemon, sandbox)
    sandbox.faults.rpc_error(SEND, 500, "INTERNAL", times=1)

    sandbox.send_message(contact, owner, "still there?")
    retried = await wait_for_event(daemon, "reply.retry")
    assert retried["error"] == "TelegramUnavailable"
    sent = await wait_for_event(daemon, "reply.sent", after=retried["id"])
    reply = await daemon.app[keys.DATABASE].repo.get_reply(sent["reply"])
    assert reply.attempts == 2
    assert sandbox.calls["messages.SendMessageRequest"] == 2
    assert sandbox.messages_from(owner, contact) == ["echo: still there?"]  # once


async def _count(daemon, type_: str) -> int:
    from tests.e2e.conftest import count_events

    return await count_events(daemon, type_)
