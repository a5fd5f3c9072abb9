"""Input at the edges of what the API documents, against the real daemon and the sandbox:
ids beyond 64 bits, chats Telegram does not know, a second code request, logging out."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AUTH, OWNER_PHONE, login, people
from twin import keys

pytestmark = pytest.mark.e2e

INT64_MAX = 2**63 - 1


async def test_ids_beyond_64_bits_are_422_not_500(sandbox, make_daemon):
    people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    for method, path, kwargs in (
        ("GET", "/messages", {"params": {"chat": str(INT64_MAX + 1)}}),
        ("GET", "/messages", {"params": {"chat": "1", "before": str(INT64_MAX + 1)}}),
        ("POST", f"/chats/{INT64_MAX + 1}/pause", {"json": {}}),
        ("GET", f"/chats/{-(2**63) - 1}/settings", {}),
        ("POST", "/send_message", {"json": {"chat": INT64_MAX + 1, "text": "hi"}}),
        ("POST", "/send_message", {"json": {"chat": str(10**19), "text": "hi"}}),
        ("GET", "/events", {"params": {"last_event_id": str(INT64_MAX + 1)}}),
        ("GET", "/events", {"headers": {**AUTH, "Last-Event-ID": str(INT64_MAX + 1)}}),
    ):
        assert daemon.client is not None
        kwargs.setdefault("headers", AUTH)
        response = await daemon.client.request(method, path, **kwargs)
        body = await response.json()
        assert response.status == 422, (path, kwargs, body)
        assert body["error"]["type"] == "validation_error"

    # The bounds themselves are valid ids: unknown here, so 404, not an overflow.
    for chat in (INT64_MAX, -(2**63)):
        status, body = await daemon.call("GET", "/messages", params={"chat": str(chat)})
        assert status == 404, body
        status, body = await daemon.call("POST", f"/chats/{chat}/resume")
        assert status == 404, body


async def test_chats_telegram_does_not_know_are_422(sandbox, make_daemon):
    people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    for chat in (-4242, -1001234567890, 987654321, "@nobody_here", INT64_MAX, -(2**63)):
        status, body = await daemon.call("POST", "/send_message", json={"chat": chat, "text": "hi"})
        assert status == 422, (chat, body)
        assert body["error"]["details"][0]["field"] == "chat"


async def test_texts_telegram_would_refuse_are_422(sandbox, make_daemon):
    people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    for text in (
        " \f\n",  # only whitespace: the documented pattern refuses it
        "\x1c",  # whitespace to Telegram (and Python), not to the pattern: Telegram refuses it
        "\U0001f600" * 4096,  # 4096 characters, but 8192 UTF-16 units for Telegram
    ):
        status, body = await daemon.call(
            "POST",
            "/send_message",
            json={"chat": "@carl_contact", "text": text, "allow_first_contact": True},
        )
        assert status == 422, (text[:5], body)
        assert body["error"]["details"][0]["field"] == "text"


async def test_a_second_code_request_sends_a_new_code(sandbox, make_daemon):
    sandbox.create_user(OWNER_PHONE, "Olga")
    daemon = await make_daemon()
    for _ in range(2):
        status, body = await daemon.call(
            "POST", "/auth/request_code", json={"phone": "+" + OWNER_PHONE}
        )
        assert status == 200, body
    status, body = await daemon.call(
        "POST",
        "/auth/verify_code",
        json={"phone": "+1 555 0100", "code": sandbox.last_code(OWNER_PHONE)},
    )
    assert status == 200 and body["status"] == "authorized"


async def test_logout_ends_the_session_for_good(sandbox, make_daemon):
    people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    assert daemon.client is not None
    # No body at all: every field of the request has a default.
    response = await daemon.client.post("/auth/logout", headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json()) == {"status": "logged_out"}
    status, body = await daemon.call("GET", "/auth/status")
    assert body["authorized"] is False
    assert await daemon.app[keys.DATABASE].repo.load_session("default") is None

    await daemon.restart()
    status, body = await daemon.call("GET", "/auth/status")
    assert status == 200 and body["authorized"] is False
    status, body = await daemon.call("POST", "/auth/logout")
    assert status == 401 and body["error"]["type"] == "not_logged_in"
