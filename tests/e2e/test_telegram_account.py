"""The Telegram account layer end to end: the real daemon app ↔ sandbox MTProto server ↔ a
contact account driven by the test through the stock Telethon client."""

from __future__ import annotations

import asyncio

from telethon import functions, types

from tests.e2e.conftest import (
    CONTACT_PHONE,
    OWNER_PHONE,
    contact_client,
    count_events,
    login,
    people,
    wait_for_event,
)
from twin import keys


async def test_login_by_code_then_restart_is_still_authorized(sandbox, make_daemon):
    owner, _ = people(sandbox)
    daemon = await make_daemon()
    status, body = await daemon.call("GET", "/auth/status")
    assert status == 200 and body["authorized"] is False

    body = await login(daemon, sandbox)
    assert body["status"] == "authorized"
    assert body["user"]["id"] == owner.id
    assert body["user"]["phone"] != "+" + OWNER_PHONE  # masked

    await daemon.restart()
    accounts = daemon.app[keys.ACCOUNTS]
    account = await accounts.get("default")  # waits for the start-up connect
    assert account.authorized
    status, body = await daemon.call("GET", "/auth/status")
    assert body["authorized"] is True and body["connected"] is True
    assert body["user"]["username"] == "olga_owner"


async def test_two_step_verification_and_wrong_answers(sandbox, make_daemon):
    sandbox.create_user(OWNER_PHONE, "Olga", password="correct horse")
    daemon = await make_daemon()
    phone = "+" + OWNER_PHONE

    status, body = await daemon.call(
        "POST", "/auth/verify_code", json={"phone": phone, "code": "1"}
    )
    assert status == 409 and body["error"]["type"] == "conflict"  # no pending login

    status, _ = await daemon.call("POST", "/auth/request_code", json={"phone": phone})
    assert status == 200
    status, body = await daemon.call(
        "POST", "/auth/verify_code", json={"phone": phone, "code": "00000"}
    )
    assert status == 422
    assert body["error"]["details"][0]["field"] == "code"

    code = sandbox.last_code(OWNER_PHONE)
    status, body = await daemon.call(
        "POST", "/auth/verify_code", json={"phone": phone, "code": code}
    )
    assert status == 200 and body["status"] == "password_required"

    status, body = await daemon.call("POST", "/auth/password", json={"password": "hunter2-bad"})
    assert status == 422 and body["error"]["details"][0]["field"] == "password"
    assert "hunter2-bad" not in str(body)

    status, body = await daemon.call("POST", "/auth/password", json={"password": "correct horse"})
    assert status == 200 and body["status"] == "authorized"


async def test_expired_code_is_409_and_bad_phone_is_422(sandbox, make_daemon):
    sandbox.create_user(OWNER_PHONE, "Olga")
    daemon = await make_daemon()
    phone = "+" + OWNER_PHONE
    status, body = await daemon.call("POST", "/auth/request_code", json={"phone": "+12"})
    assert status == 422 and body["error"]["details"][0]["field"] == "phone"

    await daemon.call("POST", "/auth/request_code", json={"phone": phone})
    code = sandbox.last_code(OWNER_PHONE)
    sandbox.expire_code(OWNER_PHONE)
    status, body = await daemon.call(
        "POST", "/auth/verify_code", json={"phone": phone, "code": code}
    )
    assert status == 409 and "expired" in body["error"]["message"]


async def test_endpoints_needing_the_account_answer_401_before_login(sandbox, make_daemon):
    sandbox.create_user(OWNER_PHONE, "Olga")
    daemon = await make_daemon()
    for method, path, kwargs in (
        ("GET", "/dialogs", {}),
        ("POST", "/send_message", {"json": {"chat": "@carl_contact", "text": "hi"}}),
    ):
        status, body = await daemon.call(method, path, **kwargs)
        assert status == 401, (path, body)
        assert body["error"]["type"] == "not_logged_in"


async def test_contact_message_is_stored_once_and_shown(sandbox, sandbox_clients, make_daemon):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)

    await carl.send_message(owner.id, "hello Olga")
    event = await wait_for_event(daemon, "message.received")
    assert event["chat"] == contact.id and event["sender"] == contact.id

    # A sweep over the same unread message must not record it again.
    accounts = daemon.app[keys.ACCOUNTS]
    account = await accounts.get()
    await account.sweep(
        lambda chat, ids: daemon.app[keys.INTAKE].recorded_ids("default", chat, ids)
    )
    assert await count_events(daemon, "message.received") == 1

    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    assert status == 200
    [message] = body["messages"]
    assert message["text"] == "hello Olga" and message["direction"] == "incoming"
    assert message["telegram_id"] is not None
    # No [llm] configured in this test: recorded, and visibly not answered.
    assert (message["state"], message["state_reason"]) == ("skipped", "llm_not_configured")


async def test_messages_sent_while_down_are_caught_up_once(sandbox, sandbox_clients, make_daemon):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "before the restart")
    await wait_for_event(daemon, "message.received")

    await daemon.stop()
    for text in ("one", "two", "three"):
        await carl.send_message(owner.id, text)

    await daemon.start()
    accounts = daemon.app[keys.ACCOUNTS]
    accounts.sweep_done.clear()
    seen = set()
    last = 0
    while len(seen) < 3:
        event = await wait_for_event(daemon, "message.received", after=last)
        last = event["id"]
        seen.add(event["message_id"])
    await asyncio.wait_for(accounts.sweep_done.wait(), 10)  # the start-up sweep also ran
    assert await count_events(daemon, "message.received") == 4
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    assert [m["text"] for m in body["messages"]] == ["three", "two", "one", "before the restart"]


async def test_dropped_updates_are_recovered_by_the_sweep(sandbox, sandbox_clients, make_daemon):
    owner, contact = people(sandbox)
    daemon = await make_daemon(telegram={"sweep_interval": 0.3})
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    sandbox.faults.drop_updates(0.3, seed=7)

    texts = [f"message {i}" for i in range(12)]
    for text in texts:
        await carl.send_message(owner.id, text)
    assert sandbox.faults.dropped > 0  # the fault really fired

    last, seen = 0, set()
    while len(seen) < len(texts):
        event = await wait_for_event(daemon, "message.received", after=last, timeout=15)
        last = event["id"]
        seen.add(event["message_id"])
    assert await count_events(daemon, "message.received") == len(texts)


async def test_owner_writing_from_another_session_is_owner_activity(
    sandbox, sandbox_clients, make_daemon
):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "are you there?")
    await wait_for_event(daemon, "message.received")

    phone_app = await sandbox_clients.signed_in(OWNER_PHONE)  # the owner's phone
    await phone_app(functions.contacts.GetContactsRequest(hash=0))
    await phone_app.send_message(contact.id, "yes, it's me")
    event = await wait_for_event(daemon, "owner.activity")
    assert event["chat"] == contact.id

    # What the daemon itself sends is not mistaken for the owner.
    status, _ = await daemon.call("POST", "/send_message", json={"chat": contact.id, "text": "x"})
    assert status == 200
    await wait_for_event(daemon, "message.sent")
    assert await count_events(daemon, "owner.activity") == 1


async def test_send_message_reaches_contact_and_flood_wait_is_429(
    sandbox, sandbox_clients, make_daemon
):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)

    status, body = await daemon.call(
        "POST",
        "/send_message",
        json={"chat": "@carl_contact", "text": "hi from the API", "allow_first_contact": True},
    )
    assert status == 200, body
    assert body["chat"] == contact.id and body["message_id"] is not None
    assert sandbox.messages_from(owner, contact) == ["hi from the API"]

    status, body = await daemon.call(
        "POST", "/send_message", json={"chat": "+" + CONTACT_PHONE, "text": "by phone"}
    )
    assert status == 200, body

    sandbox.faults.flood_wait("messages.sendMessage", seconds=42)
    status, body = await daemon.call(
        "POST", "/send_message", json={"chat": contact.id, "text": "x"}
    )
    assert status == 429 and body["error"]["type"] == "rate_limited"
    assert sandbox.messages_from(owner, contact) == ["hi from the API", "by phone"]

    status, body = await daemon.call("POST", "/send_message", json={"chat": "@nobody", "text": "x"})
    assert status == 422 and body["error"]["details"][0]["field"] == "chat"


async def test_flood_wait_carries_retry_after_header(sandbox, make_daemon):
    from tests.e2e.conftest import AUTH

    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    sandbox.faults.flood_wait("messages.sendMessage", seconds=42)
    response = await daemon.client.post(
        "/send_message",
        json={"chat": "@carl_contact", "text": "x", "allow_first_contact": True},
        headers=AUTH,
    )
    assert response.status == 429
    assert response.headers["Retry-After"] == "42"


async def test_voice_note_from_contact_is_recognised(
    sandbox, sandbox_clients, make_daemon, voice_note_ogg
):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    # Official apps state the duration (Telethon alone can't measure OGG without hachoir).
    await carl.send_file(
        owner.id,
        voice_note_ogg,
        voice_note=True,
        attributes=[types.DocumentAttributeAudio(duration=2, voice=True)],
    )

    event = await wait_for_event(daemon, "message.received")
    assert event["kind"] == "voice"
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    [message] = body["messages"]
    assert message["kind"] == "voice"
    assert message["duration"] == 2.0


async def test_dialogs_list_and_pagination(sandbox, sandbox_clients, make_daemon):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    await daemon.call(
        "POST",
        "/send_message",
        json={"chat": "@carl_contact", "text": "latest words", "allow_first_contact": True},
    )

    status, body = await daemon.call("GET", "/dialogs", params={"limit": 10})
    assert status == 200
    carl = next(d for d in body["dialogs"] if d["id"] == contact.id)
    assert carl["title"].startswith("Carl") and carl["kind"] == "private"
    assert carl["last_message"] == "latest words" and carl["paused"] is False

    status, page = await daemon.call("POST", "/get_dialogs", json={"limit": 1, "offset": 0})
    assert status == 200 and len(page["dialogs"]) == 1
    status, body = await daemon.call("GET", "/dialogs", params={"limit": "many"})
    assert status == 422


async def test_messages_missed_during_a_reconnect_are_caught_up(sandbox, make_daemon):
    owner, contact = people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    account = await daemon.app[keys.ACCOUNTS].get()
    assert account.connected
    sandbox.disconnect_user(owner)
    sandbox.send_message(contact, owner, "sent while you were reconnecting")  # not pushed
    event = await wait_for_event(daemon, "message.received", timeout=15)
    assert event["chat"] == contact.id
