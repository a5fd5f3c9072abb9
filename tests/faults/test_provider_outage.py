"""Provider outages longer than the retry budget, end to end: the real daemon logged in to the
sandbox MTProto server, the fake OpenAI server (the real openai SDK talks to it) answering 500s
or hanging past `llm.timeout` for as long as the test says, then working again.

Nothing is lost (every message is answered once the provider is back, without any new traffic
to prove it), nothing is doubled (one answer per message, each reply sent once, a half-sent
reply resumes its stored bubbles), a refusal stays failed, a message older than
`max_catch_up_age` is not answered late, and POST /replies/{id}/retry re-queues by hand.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e import conftest as e2e
from tests.e2e.conftest import brain_reply, fast_pipeline, login, people, wait_for_event
from twin import keys
from twin.domain.models import Direction, Failure, ReplyState
from twin.services.recovery import EXPIRED_REASON

pytestmark = pytest.mark.e2e

make_daemon = e2e.make_daemon  # the e2e fixture (the real app on loopback), shared

# A small retry budget: two attempts a few tens of milliseconds apart, then `failed`.
BUDGET = {
    "max_attempts": 2,
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "debounce_seconds": 0,
}


async def start(sandbox, make_daemon, fake, *, friends: int = 3, **sections: Any):
    """The owner logged in to a daemon with the small budget, and `friends` saved contacts."""
    owner, carl = people(sandbox)
    contacts = [carl]
    for i in range(friends - 1):
        friend = sandbox.create_user(f"1555030{i}", f"Friend{i}", username=f"friend_{i}")
        sandbox.add_contact(owner, friend)
        sandbox.add_contact(friend, owner)
        contacts.append(friend)
    twin = {**BUDGET, **sections.pop("twin", {})}
    daemon = await make_daemon(**fast_pipeline(fake.base_url + "/v1", twin=twin, **sections))
    await login(daemon, sandbox)
    return daemon, owner, contacts


def repo(daemon):
    return daemon.app[keys.DATABASE].repo


async def events_of(daemon, type_: str) -> list[dict]:
    return [
        {"id": e.id, **e.data}
        for e in await repo(daemon).events_since(0, limit=100_000)
        if e.type == type_
    ]


async def wait_distinct(daemon, type_: str, count: int, *, after: int = 0, **match: Any):
    """Wait until `count` distinct replies had a `type_` event (matching `match`) after
    `after`; returns the last such event of each."""
    found: dict[int, dict] = {}
    last = after
    while len(found) < count:
        event = await wait_for_event(
            daemon,
            type_,
            lambda data: all(data.get(k) == v for k, v in match.items()),
            after=last,
            timeout=30,
        )
        last = event["id"]
        found[event["reply"]] = event
    return found


async def wait_idle(daemon) -> None:
    worker = daemon.app[keys.SERVICES]["worker"]
    await asyncio.wait_for(worker.idle.wait(), 30)


async def assert_answered_exactly_once(daemon, sandbox, owner, contacts) -> None:
    """Each contact got one answer, to all of their messages, from one reply sent once."""
    for contact in contacts:
        assert len(sandbox.messages_from(owner, contact)) == 1, sandbox.messages_from(
            owner, contact
        )
        status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
        assert status == 200
        incoming = [m for m in body["messages"] if m["direction"] == "incoming"]
        bubbles = [m for m in body["messages"] if m["direction"] == "outgoing"]
        assert incoming and {m["state"] for m in incoming} == {"sent"}, incoming
        assert len({m["reply_id"] for m in incoming}) == 1  # one reply answers them all
        assert [b["state"] for b in bubbles if b["state"] == "sent"] == ["sent"]
    sent = Counter(e["reply"] for e in await events_of(daemon, "reply.sent"))
    assert len(sent) == len(contacts) and set(sent.values()) == {1}, sent


async def test_llm_500s_longer_than_the_retry_budget_lose_and_double_nothing(
    sandbox, make_daemon, fake_openai
):
    daemon, owner, contacts = await start(sandbox, make_daemon, fake_openai)
    health = daemon.app[keys.HEALTH]
    fake_openai.start_outage(status=500)

    for i, contact in enumerate(contacts):
        sandbox.send_message(contact, owner, f"question {i}?")
    failed = await wait_distinct(daemon, "reply.failed", len(contacts))
    # The first contact writes again during the outage: a second reply, failed too.
    sandbox.send_message(contacts[0], owner, "hello?? anyone")
    second = await wait_for_event(
        daemon, "reply.failed", lambda d: d["reply"] not in failed, timeout=30
    )
    failed[second["reply"]] = second
    assert len(failed) == len(contacts) + 1
    for reply_id, event in failed.items():
        reply = await repo(daemon).get_reply(reply_id)
        assert (reply.state, reply.failure) == (ReplyState.FAILED, Failure.OUTAGE)
        assert event["failure"] == "outage" and "500" in event["error"]
    assert health.get("llm").failing  # only outages count as the provider failing
    # While it lasts, the probe tries one chat (the oldest failure's) with one attempt.
    probe = await wait_for_event(daemon, "reply.requeued", lambda d: d["trigger"] == "probe")
    again = await wait_for_event(
        daemon, "reply.failed", lambda d: d["reply"] == probe["reply"], after=probe["id"]
    )
    assert again["failure"] == "outage"
    assert (await repo(daemon).get_reply(probe["reply"])).chat_id == (
        await repo(daemon).get_reply(min(failed))
    ).chat_id
    assert [e["reply"] for e in await events_of(daemon, "reply.requeued")] == [probe["reply"]]
    assert sandbox.messages_from(owner, contacts[0]) == []

    fake_openai.end_outage()  # back, and nobody writes: only the probe can notice
    await wait_distinct(daemon, "reply.sent", len(contacts))
    await wait_idle(daemon)

    await assert_answered_exactly_once(daemon, sandbox, owner, contacts)
    # The first contact's two failed replies were answered by one.
    skipped = await events_of(daemon, "reply.skipped")
    assert [e["reason"] for e in skipped] == ["superseded"]
    requeued = await events_of(daemon, "reply.requeued")
    assert "probe" in {e["trigger"] for e in requeued}  # no traffic: the probe noticed
    assert {e["trigger"] for e in requeued} <= {"probe", "recovered"}
    assert not health.get("llm").failing
    response = await daemon.client.get("/metrics", headers=e2e.AUTH)
    text = await response.text()
    assert 'twin_replies_failed_total{kind="outage"}' in text
    assert 'twin_replies_requeued_total{trigger="probe"}' in text


async def test_llm_hanging_past_its_timeout_across_a_restart_loses_and_doubles_nothing(
    sandbox, make_daemon, fake_openai
):
    daemon, owner, contacts = await start(
        sandbox, make_daemon, fake_openai, friends=2, llm={"timeout": 0.5}
    )
    fake_openai.start_outage(hang=True)  # requests never answered: the SDK times out

    for i, contact in enumerate(contacts):
        sandbox.send_message(contact, owner, f"still there {i}?")
    failed = await wait_distinct(daemon, "reply.failed", len(contacts))
    assert {e["failure"] for e in failed.values()} == {"outage"}
    assert all("timed out" in e["error"] for e in failed.values())
    # A restart meanwhile forgets what the health registry knew: the database remembers.
    await daemon.restart()
    assert not daemon.app[keys.HEALTH].get("llm").failing

    fake_openai.end_outage()
    await wait_distinct(daemon, "reply.sent", len(contacts))
    await wait_idle(daemon)
    await assert_answered_exactly_once(daemon, sandbox, owner, contacts)


async def test_a_refusal_fails_at_once_and_is_not_requeued_when_the_provider_recovers(
    sandbox, make_daemon, fake_openai
):
    daemon, owner, (refused, other) = await start(sandbox, make_daemon, fake_openai, friends=2)
    fake_openai.fail_next(status=400)  # an invalid request / refused content: no retry helps

    sandbox.send_message(refused, owner, "something the provider refuses")
    failed = await wait_for_event(daemon, "reply.failed")
    assert failed["failure"] == "permanent"
    reply = await repo(daemon).get_reply(failed["reply"])
    assert (reply.failure, reply.attempts) == (Failure.PERMANENT, 1)
    assert len(reply.reason) <= 64 and reply.reason.startswith("LLMError")
    assert "400" in failed.get("error", reply.reason)  # the whole error when it was cut
    assert not daemon.app[keys.HEALTH].get("llm").failing  # a refusal is no outage

    # An outage fails another contact's reply; when it ends, only that one is re-queued.
    fake_openai.start_outage(status=503)
    sandbox.send_message(other, owner, "are you there?")
    await wait_distinct(daemon, "reply.failed", 1, after=failed["id"], failure="outage")
    fake_openai.end_outage()
    await wait_distinct(daemon, "reply.sent", 1)
    await wait_idle(daemon)

    assert len(sandbox.messages_from(owner, other)) == 1
    assert sandbox.messages_from(owner, refused) == []
    reply = await repo(daemon).get_reply(failed["reply"])
    assert (reply.state, reply.failure) == (ReplyState.FAILED, Failure.PERMANENT)
    requeued = await events_of(daemon, "reply.requeued")
    assert requeued and reply.id not in {e["reply"] for e in requeued}


async def test_a_reply_older_than_max_catch_up_age_is_not_requeued(
    sandbox, make_daemon, fake_openai
):
    daemon, owner, (old, recent) = await start(
        sandbox, make_daemon, fake_openai, friends=2, telegram={"max_catch_up_age": 3600}
    )
    fake_openai.start_outage(status=500)
    sandbox.send_message(old, owner, "did you see my message?")
    sandbox.send_message(recent, owner, "ping")
    await wait_distinct(daemon, "reply.failed", 2, failure="outage")
    # The outage lasted: the first contact's message is now older than max_catch_up_age.
    status, body = await daemon.call("GET", "/messages", params={"chat": old.id})
    stale = body["messages"][0]["reply_id"]
    for message in await repo(daemon).reply_messages(stale):
        if message.direction is Direction.INCOMING:
            await repo(daemon).update_message(message.id, date=message.date - timedelta(hours=2))

    fake_openai.end_outage()
    await wait_distinct(daemon, "reply.sent", 1)
    expired = await wait_for_event(daemon, "reply.expired")
    await wait_idle(daemon)

    assert expired["reply"] == stale and expired["reason"] == EXPIRED_REASON
    reply = await repo(daemon).get_reply(stale)
    assert (reply.state, reply.failure, reply.reason) == (
        ReplyState.FAILED,
        Failure.EXPIRED,
        EXPIRED_REASON,
    )
    assert sandbox.messages_from(owner, old) == []
    assert len(sandbox.messages_from(owner, recent)) == 1
    status, body = await daemon.call("GET", "/messages", params={"chat": old.id})
    assert [(m["state"], m["state_reason"]) for m in body["messages"]] == [
        ("failed", EXPIRED_REASON)
    ]


async def test_a_chat_the_owner_answered_during_the_outage_is_not_answered_late(
    sandbox, make_daemon, fake_openai
):
    # No takeover pause: only the owner's message itself says the chat was dealt with.
    daemon, owner, (carl, friend) = await start(
        sandbox, make_daemon, fake_openai, friends=2, twin={"takeover_minutes": 0}
    )
    fake_openai.start_outage(status=500)
    sandbox.send_message(carl, owner, "are you free tonight?")
    sandbox.send_message(friend, owner, "ping")
    await wait_distinct(daemon, "reply.failed", 2, failure="outage")
    sandbox.send_message(owner, carl, "Yes, I am!")  # from the owner's phone
    await wait_for_event(daemon, "owner.activity")

    fake_openai.end_outage()
    await wait_distinct(daemon, "reply.sent", 1)
    cancelled = await wait_for_event(daemon, "reply.cancelled")
    await wait_idle(daemon)

    assert cancelled["reason"] == "paused"
    assert sandbox.messages_from(owner, carl) == ["Yes, I am!"]
    assert len(sandbox.messages_from(owner, friend)) == 1
    reply = await repo(daemon).get_reply(cancelled["reply"])
    assert (reply.state, reply.failure) == (ReplyState.CANCELLED, None)


async def test_retry_by_hand(sandbox, make_daemon, fake_openai):
    daemon, owner, (carl,) = await start(sandbox, make_daemon, fake_openai, friends=1)
    fake_openai.fail_next(status=400)
    sandbox.send_message(carl, owner, "hi there")
    failed = await wait_for_event(daemon, "reply.failed")
    status, body = await daemon.call("GET", "/messages", params={"chat": carl.id})
    reply_id = body["messages"][0]["reply_id"]
    assert reply_id == failed["reply"]

    fake_openai.queue_reply(brain_reply("Sorry, here it is."))
    status, body = await daemon.call("POST", f"/replies/{reply_id}/retry", json={})
    assert status == 200, body
    assert body["id"] == reply_id
    assert (body["state"], body["failure"], body["attempts"]) == ("scheduled", None, 0)
    sent = await wait_for_event(daemon, "reply.sent", lambda d: d["reply"] == reply_id)
    requeued = await wait_for_event(daemon, "reply.requeued")
    assert (requeued["trigger"], requeued["failure"]) == ("manual", "permanent")
    await wait_idle(daemon)
    assert sandbox.messages_from(owner, carl) == ["Sorry, here it is."]

    # Not failed (any more): 409. Unknown, or another account's: 404.
    status, body = await daemon.call("POST", f"/replies/{reply_id}/retry", json={})
    assert (status, body["error"]["type"]) == (409, "conflict"), body
    assert "sent" in body["error"]["message"]
    status, body = await daemon.call("POST", f"/replies/{reply_id + 1000}/retry", json={})
    assert (status, body["error"]["type"]) == (404, "not_found")
    await repo(daemon).get_or_create_account("other")
    for account in ("other", "nobody"):
        status, body = await daemon.call(
            "POST", f"/replies/{reply_id}/retry", json={"account": account}
        )
        assert (status, body["error"]["type"]) == (404, "not_found"), account
    status, body = await daemon.call("POST", "/replies/0/retry", json={})
    assert status == 422
    assert [e["id"] for e in await events_of(daemon, "reply.sent")] == [sent["id"]]
    status, spec = await daemon.call("GET", "/openapi.json")
    assert "post" in spec["paths"]["/replies/{reply_id}/retry"]


async def test_a_reply_failed_while_sending_resumes_its_bubbles(sandbox, make_daemon, fake_openai):
    daemon, owner, (carl,) = await start(
        sandbox, make_daemon, fake_openai, friends=1, humanize={"bubble_max_chars": 40}
    )
    parts = ["First part of a long answer here.", "Second part after a pause.", "Third part."]
    fake_openai.queue_reply(brain_reply("\n\n".join(parts)))

    def telegram_goes_down(event) -> None:
        # Right after the first bubble went out (synchronously: before the second is sent).
        if event.type == "bubble.sent" and event.data["index"] == 0:
            sandbox.faults.flood_wait("messages.sendMessage", 1, times=None)

    daemon.app[keys.EVENTS].subscribe(telegram_goes_down)
    sandbox.send_message(carl, owner, "tell me everything")
    failed = await wait_for_event(daemon, "reply.failed", timeout=30)
    assert failed["failure"] == "outage"
    assert sandbox.messages_from(owner, carl) == parts[:1]

    sandbox.faults.clear()  # Telegram answers again: the probe resumes the stored bubbles
    await wait_for_event(daemon, "reply.sent", timeout=30)
    await wait_idle(daemon)
    requeued = await events_of(daemon, "reply.requeued")
    assert requeued[0]["state"] == "sending"
    assert len(fake_openai.chat_requests) == 1  # resumed, never regenerated
    status, body = await daemon.call("GET", "/messages", params={"chat": carl.id})
    bubbles = [m for m in reversed(body["messages"]) if m["direction"] == "outgoing"]
    assert len(bubbles) > 1 and {m["state"] for m in bubbles} == {"sent"}
    # each stored bubble went out once, in order: the first before the outage, the rest after
    assert sandbox.messages_from(owner, carl) == [m["text"] for m in bubbles]
    assert bubbles[0]["text"] == parts[0]
