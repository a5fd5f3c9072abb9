"""The safety governor end to end: the real daemon ↔ the sandbox MTProto server, whose fault
switches answer like a Telegram that limits the account (FLOOD_WAIT, PEER_FLOOD)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    AUTH,
    brain_reply,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from twin import keys

pytestmark = pytest.mark.e2e

SEND = "messages.SendMessageRequest"


async def safety_of(daemon) -> dict:
    status, body = await daemon.call("GET", "/accounts/default/safety")
    assert status == 200, body
    return body


async def notes_to_owner(daemon, sandbox, owner) -> list[str]:
    await daemon.app[keys.SAFETY].drain()  # the note goes in the background
    return sandbox.messages_from(owner, owner)


async def test_peer_flood_puts_the_account_in_draft_mode_until_the_owner_turns_it_back_on(
    sandbox, make_daemon, fake_openai
):
    owner, carl = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1", twin={"debounce_seconds": 0})
    )
    await login(daemon, sandbox)

    sandbox.faults.rpc_error(SEND, 400, "PEER_FLOOD", times=1)
    fake_openai.queue_reply(brain_reply("hello Carl"))
    sandbox.send_message(carl, owner, "hi Olga")
    mode = await wait_for_event(daemon, "account.mode", timeout=30)
    assert (mode["mode"], mode["by"]) == ("draft", "governor")
    failed = await wait_for_event(daemon, "reply.failed", timeout=30)
    assert "PEER_FLOOD" in failed["reason"]
    notes = await notes_to_owner(daemon, sandbox, owner)
    assert len(notes) == 1 and "writes drafts for you" in notes[0] and "PEER_FLOOD" in notes[0]
    report = await safety_of(daemon)
    assert (report["mode"], report["set_by"]) == ("draft", "governor")
    assert "limited for spam" in report["reason"]
    assert report["spam_limits"]["last_24h"] == 1

    # Draft mode: the next reply is written and kept, not sent.
    fake_openai.queue_reply(brain_reply("a draft for Olga"))
    sandbox.send_message(carl, owner, "are you there?")
    skipped = await wait_for_event(daemon, "reply.skipped", lambda d: d["reason"] == "drafted")
    reply = await daemon.app[keys.DATABASE].repo.get_reply(skipped["reply"])
    assert reply.text == "a draft for Olga"
    assert sandbox.messages_from(owner, carl) == []

    # Off: not even drafted, with the reason.
    status, body = await daemon.call(
        "PUT", "/accounts/default/safety", json={"mode": "off", "reason": "holiday"}
    )
    assert status == 200 and (body["mode"], body["set_by"]) == ("off", "owner")
    sandbox.send_message(carl, owner, "hello?")
    off = await wait_for_event(daemon, "message.skipped", lambda d: d["reason"] == "account_off")
    assert any("set by the owner: holiday" in line for line in off["explain"])

    # The owner turns it back on: answered and sent again; the governor's note was sent once.
    status, body = await daemon.call("PUT", "/accounts/default/safety", json={"mode": "active"})
    assert status == 200 and body["mode"] == "active"
    fake_openai.queue_reply(brain_reply("back now"))
    sandbox.send_message(carl, owner, "ping")
    await wait_for_event(daemon, "reply.sent", timeout=30)
    assert sandbox.messages_from(owner, carl) == ["back now"]
    notes = await notes_to_owner(daemon, sandbox, owner)
    assert len([n for n in notes if "to protect your account" in n]) == 1  # one governor note
    assert [n for n in notes if "to protect" not in n] == [  # and the draft, shown to the owner
        "twin drafted a reply to Carl Contact («are you there?»):\n\na draft for Olga\n\n"
        "Reply to this message: + to send it, - to skip it, or your own text to send instead."
    ]
    response = await daemon.client.get("/metrics", headers=AUTH)
    metrics = await response.text()
    assert 'twin_telegram_spam_limits_total{account="default",category="send"} 1.0' in metrics
    assert 'twin_account_mode{account="default",mode="active"} 1.0' in metrics


async def test_flood_waits_are_sat_out_in_full_and_k_of_them_in_an_hour_trip_the_governor(
    sandbox, make_daemon
):
    owner, carl = people(sandbox)
    daemon = await make_daemon(
        telegram={"flood_sleep_threshold": 2},
        safety={"flood_waits_per_hour": 2, "on_trip": "off"},
    )
    await login(daemon, sandbox)
    sandbox.send_message(carl, owner, "hi")  # they have talked: not a first contact

    sandbox.faults.flood_wait(SEND, 1, times=1)
    status, body = await daemon.call("POST", "/send_message", json={"chat": carl.id, "text": "a"})
    assert status == 200, body
    first, retried = sandbox.call_times[SEND][-2:]
    assert retried - first >= 1.0  # the wait was kept in full before the call was made again
    assert sandbox.messages_from(owner, carl) == ["a"]
    assert (await safety_of(daemon))["mode"] == "active"

    sandbox.faults.flood_wait(SEND, 60, times=1)  # too long to sit out: the caller hears it
    status, body = await daemon.call("POST", "/send_message", json={"chat": carl.id, "text": "b"})
    assert status == 429 and body["error"]["type"] == "rate_limited"
    report = await safety_of(daemon)
    assert (report["mode"], report["set_by"]) == ("off", "governor")
    assert "2 flood waits from Telegram in the last hour (limit 2)" in report["reason"]
    assert report["flood_waits"] == {
        "last_hour": 2,
        "last_24h": 2,
        "seconds_24h": 61.0,
        "trip_after": 2,
    }
    assert report["calls"]["send"]["blocked_for"] > 50
    calls = sandbox.calls[SEND]
    status, body = await daemon.call("POST", "/send_message", json={"chat": carl.id, "text": "c"})
    assert status == 429  # refused here: Telegram is not asked before its wait is over
    assert sandbox.calls[SEND] == calls
    assert sandbox.messages_from(owner, carl) == ["a"]

    # A restart forgets nothing: the mode, the flood waits, the block still running, the sends.
    await daemon.restart()
    await daemon.app[keys.ACCOUNTS].get("default")
    report = await safety_of(daemon)
    assert (report["mode"], report["flood_waits"]["last_hour"]) == ("off", 2)
    assert report["calls"]["send"]["blocked_for"] > 30 and report["sends"]["last_24h"] == 1
    status, body = await daemon.call("POST", "/send_message", json={"chat": carl.id, "text": "d"})
    assert status == 429 and sandbox.calls[SEND] == calls


async def test_the_twin_never_messages_first_unless_asked_and_then_within_a_budget(
    sandbox, make_daemon
):
    owner, carl = people(sandbox)
    sandbox.create_user("15550301", "Sam", username="sam_stranger")
    sandbox.create_user("15550302", "Tia", username="tia_stranger")
    daemon = await make_daemon(safety={"first_contacts_daily": 1})
    await login(daemon, sandbox)

    status, body = await daemon.call(
        "POST", "/send_message", json={"chat": "@sam_stranger", "text": "hello"}
    )
    assert status == 403 and body["error"]["type"] == "forbidden"
    assert "never exchanged messages" in body["error"]["message"]
    assert "allow_first_contact" in body["error"]["message"]
    sam = sandbox.user("@sam_stranger")
    assert sandbox.messages_from(owner, sam) == []

    status, body = await daemon.call(
        "POST",
        "/send_message",
        json={"chat": "@sam_stranger", "text": "hello", "allow_first_contact": True},
    )
    assert status == 200, body
    assert sandbox.messages_from(owner, sam) == ["hello"]
    # Sam is known now: no permission needed, nothing more counted.
    status, _ = await daemon.call("POST", "/send_message", json={"chat": sam.id, "text": "again"})
    assert status == 200

    status, body = await daemon.call(
        "POST",
        "/send_message",
        json={"chat": "@tia_stranger", "text": "hello", "allow_first_contact": True},
    )
    assert status == 429 and "first-contact budget reached (1 of 1" in body["error"]["message"]
    assert sandbox.messages_from(owner, sandbox.user("@tia_stranger")) == []
    report = await safety_of(daemon)
    assert report["first_contacts"] == {"last_24h": 1, "budget": 1}
    assert report["sends"]["last_24h"] == 2

    sandbox.send_message(carl, owner, "hi Olga")  # someone who wrote first is answered freely
    await wait_for_event(daemon, "message.received")
    status, _ = await daemon.call("POST", "/send_message", json={"chat": carl.id, "text": "hi"})
    assert status == 200


async def test_every_kind_of_call_has_its_bucket(sandbox, make_daemon):
    """Dialog lists (what the sweep and the API read) wait for a token like sends do: beyond
    the burst and the longest wait, the call is not made and the caller hears when to retry."""
    people(sandbox)
    daemon = await make_daemon(
        safety={"dialogs_per_hour": 1, "dialogs_burst": 1, "max_wait_seconds": 0}
    )
    await login(daemon, sandbox)
    before = sandbox.calls["messages.GetDialogsRequest"]
    status, _ = await daemon.call("GET", "/dialogs", params={"limit": 10})
    assert status == 200
    status, body = await daemon.call("GET", "/dialogs", params={"limit": 10})
    assert status == 429 and "dialogs calls over 1/h (burst 1)" in body["error"]["message"]
    assert sandbox.calls["messages.GetDialogsRequest"] == before + 1
    report = await safety_of(daemon)
    assert report["calls"]["dialogs"]["last_hour"] == 1
    assert report["calls"]["dialogs"]["per_hour"] == 1 and report["calls"]["dialogs"]["burst"] == 1
