"""`POST /api/v1/messaging/send` through a logged-in personal account, over MTProto to the
sandbox (issue 15, item 3): the contact receives it once, and the platform lists the account."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CONTACT_PHONE, OWNER_PHONE, fast_pipeline, login

pytestmark = pytest.mark.e2e


async def test_send_as_the_owner_through_the_messaging_api(sandbox, make_daemon, fake_openai):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    contact = sandbox.create_user(CONTACT_PHONE, "Carl", username="carl_contact")
    sandbox.add_contact(owner, contact)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)

    status, platforms = await daemon.call("GET", "/api/v1/messaging/platforms")
    assert status == 200
    assert ("telegram", "default", "connected") in [
        (p["platform"], p["name"], p["status"]) for p in platforms["platforms"]
    ]
    status, sent = await daemon.call(
        "POST",
        "/api/v1/messaging/send",
        json={
            "platform": "telegram",
            "chat_id": "@carl_contact",
            "text": "Your table is ready",
            "allow_first_contact": True,
        },
    )
    assert status == 200, sent
    assert sent["delivery_status"] == "sent" and isinstance(sent["platform_message_id"], int)
    assert sandbox.messages_from(owner, contact) == ["Your table is ready"]
    status, refused = await daemon.call(
        "POST",
        "/api/v1/messaging/send",
        json={
            "platform": "telegram",
            "chat_id": str(contact.id),
            "text": "Pick",
            "inline_keyboard": [[{"text": "A", "callback_data": "a"}]],
        },
    )
    assert status == 422 and "bots" in refused["error"]["message"]
    assert sandbox.messages_from(owner, contact) == ["Your table is ready"]
