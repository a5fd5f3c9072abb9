"""Issue 12.8: `POST /auth/request_code` on an account already logged in answered as if it were
not (a second login on top of a live session). Now: 409 `conflict` unless `force`, which ends
the current session at Telegram first; the new login then answers contacts as before."""

from __future__ import annotations

from tests.e2e.conftest import (
    OWNER_PHONE,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)


async def test_a_logged_in_account_needs_force_to_log_in_again(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    code_before = sandbox.last_code(OWNER_PHONE)

    status, body = await daemon.call(
        "POST", "/auth/request_code", json={"phone": "+" + OWNER_PHONE}
    )
    assert status == 409, body
    assert body["error"]["type"] == "conflict"
    assert "force" in body["error"]["message"]
    assert sandbox.last_code(OWNER_PHONE) == code_before  # no code was asked of Telegram
    status, body = await daemon.call("GET", "/auth/status")
    assert body["authorized"] is True  # nothing changed

    status, body = await daemon.call(
        "POST", "/auth/request_code", json={"phone": "+" + OWNER_PHONE, "force": True}
    )
    assert status == 200 and body["status"] == "code_sent", body
    assert sandbox.authorizations(owner) == 0  # the old authorization ended at Telegram
    status, body = await daemon.call(
        "POST",
        "/auth/verify_code",
        json={"phone": "+" + OWNER_PHONE, "code": sandbox.last_code(OWNER_PHONE)},
    )
    assert status == 200 and body["status"] == "authorized", body
    await wait_for_event(daemon, "account.logged_out")

    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "still there?")
    await wait_for_event(daemon, "reply.sent", timeout=30)
    assert len(sandbox.messages_from(owner, contact)) == 1
