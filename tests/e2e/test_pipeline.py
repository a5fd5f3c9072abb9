"""The reply pipeline end to end: contact ↔ sandbox ↔ daemon ↔ fake LLM (real openai SDK)."""

from __future__ import annotations

import asyncio

from telethon import events, functions

from tests.e2e.conftest import (
    CONTACT_PHONE,
    OWNER_PHONE,
    brain_reply,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from twin import keys


class Observed:
    """What the contact's client sees, in order: read receipts, typing, messages."""

    def __init__(self, client, owner_id: int) -> None:
        self.log: list[tuple[str, object]] = []
        self.changed = asyncio.Event()
        self.messages: asyncio.Queue = asyncio.Queue()

        @client.on(events.MessageRead(inbox=False))
        async def on_read(event):
            self._add("read", event.max_id)

        @client.on(events.UserUpdate(chats=[owner_id]))
        async def on_action(event):
            if event.typing:
                self._add("typing", None)
            elif event.recording:
                self._add("recording", None)

        @client.on(events.NewMessage(incoming=True, from_users=[owner_id]))
        async def on_message(event):
            self._add("message", event.message)
            self.messages.put_nowait(event.message)

    def _add(self, kind: str, value: object) -> None:
        self.log.append((kind, value))
        self.changed.set()

    def kinds(self) -> list[str]:
        collapsed: list[str] = []
        for kind, _ in self.log:
            if not collapsed or collapsed[-1] != kind:
                collapsed.append(kind)
        return collapsed

    async def next_message(self, timeout: float = 10.0):
        return await asyncio.wait_for(self.messages.get(), timeout)


async def test_contact_sees_read_then_typing_then_the_llm_reply(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    seen = Observed(carl, owner.id)
    fake_openai.queue_reply(
        {
            "text": "Hi Carl! All good here.",
            "requires_human": False,
            "intent": "greeting",
            "confidence": 0.9,
            "end_conversation": False,
        }
    )

    await carl.send_message(owner.id, "hey, how are you?")
    reply = await seen.next_message()
    assert reply.message == "Hi Carl! All good here."
    assert seen.kinds()[-3:] == ["read", "typing", "message"]

    sent = await wait_for_event(daemon, "reply.sent")
    scheduled = await wait_for_event(daemon, "reply.scheduled")
    assert scheduled["action"] == "reply"
    assert any("read delay" in line for line in scheduled["explain"])  # the why is recorded
    # The contact's words reached the model inside the user role.
    user_text = " ".join(m["content"] for m in fake_openai.last_messages if m["role"] == "user")
    assert "hey, how are you?" in user_text
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    states = [(m["direction"], m["state"]) for m in body["messages"]]
    assert states == [("outgoing", "sent"), ("incoming", "sent")]
    assert sent["bubbles"] == 1


async def wait_idle(daemon) -> None:
    """The worker has nothing running and nothing due."""
    worker = daemon.app[keys.SERVICES]["worker"]
    await asyncio.wait_for(worker.idle.wait(), 10)


async def slow_reader(sandbox, sandbox_clients, make_daemon, fake_openai, *, read_delay, **twin):
    """A daemon on a ManualClock that reads after exactly `read_delay` seconds (no typing), so a
    test can act while a reply is pending and then move time on."""
    from datetime import UTC, datetime

    from twin.app import Adapters
    from twin.clock import ManualClock

    owner, contact = people(sandbox)
    clock = ManualClock(datetime.now(UTC))
    daemon = await make_daemon(
        adapters=Adapters(clock=clock),
        **fast_pipeline(
            fake_openai.base_url + "/v1",
            twin={"debounce_seconds": 0, **twin},
            humanize={
                "read_delay_median": read_delay,
                "read_delay_min": read_delay,
                "read_delay_max": read_delay,
                "typing_cps": 0,
                "bubble_pause": 0,
            },
        ),
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    return daemon, clock, owner, contact, carl, Observed(carl, owner.id)


async def test_non_contacts_off_and_bots_are_never_answered(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    stranger = sandbox.create_user(CONTACT_PHONE, "Stan", username="stan_stranger")
    bot = sandbox.create_user("15550300", "Helper", username="helper_bot", bot=True)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1", twin={"non_contacts": False})
    )
    await login(daemon, sandbox)

    sandbox.send_message(stranger, owner, "hi, do we know each other?")
    skipped = await wait_for_event(daemon, "message.skipped")
    assert skipped["reason"] == "non_contact"
    sandbox.add_contact(owner, bot)  # even a saved bot is never answered
    sandbox.send_message(bot, owner, "/start")
    skipped = await wait_for_event(daemon, "message.skipped", after=skipped["id"])
    assert skipped["reason"] == "bot"
    await wait_idle(daemon)
    assert fake_openai.chat_requests == []
    assert sandbox.messages_from(owner, stranger) == []
    status, body = await daemon.call("GET", "/messages", params={"chat": stranger.id})
    assert body["messages"][0]["state"] == "skipped"
    assert body["messages"][0]["state_reason"] == "non_contact"


async def test_away_mode_sends_one_away_message_per_window(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    closed = {day: ["closed"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    daemon = await make_daemon(
        **fast_pipeline(
            fake_openai.base_url + "/v1",
            schedule={
                "hours": closed,
                "outside_hours": "away",
                "away_message": "Away till Monday.",
            },
        )
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    seen = Observed(carl, owner.id)

    await carl.send_message(owner.id, "are you around?")
    away = await seen.next_message()
    assert away.message == "Away till Monday."
    first = await wait_for_event(daemon, "reply.sent")

    await carl.send_message(owner.id, "hello??")
    skipped = await wait_for_event(daemon, "message.skipped", after=first["id"])
    assert skipped["reason"] == "away_already_sent"
    await wait_idle(daemon)
    assert sandbox.messages_from(owner, contact) == ["Away till Monday."]
    assert fake_openai.chat_requests == []  # a fixed away text needs no model


async def test_defer_answers_at_the_next_opening(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    from datetime import UTC, datetime

    from twin.app import Adapters
    from twin.clock import ManualClock

    owner, contact = people(sandbox)
    clock = ManualClock(datetime(2026, 11, 21, 6, 0, tzinfo=UTC))  # a Saturday, 06:00
    nine_to_six = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
    daemon = await make_daemon(
        adapters=Adapters(clock=clock),
        **fast_pipeline(
            fake_openai.base_url + "/v1",
            schedule={"hours": nine_to_six, "outside_hours": "defer"},
            humanize={"enabled": False},
        ),
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    seen = Observed(carl, owner.id)
    fake_openai.queue_reply(brain_reply("Morning! Just saw this."))

    await carl.send_message(owner.id, "ping me when you're up")
    scheduled = await wait_for_event(daemon, "reply.scheduled")
    assert scheduled["action"] == "defer"
    assert scheduled["reply_at"].startswith("2026-11-21T09:00")
    await wait_idle(daemon)
    assert sandbox.messages_from(owner, contact) == []  # not at 06:00

    await clock.advance(to=datetime(2026, 11, 21, 9, 0, 1, tzinfo=UTC))
    reply = await seen.next_message()
    assert reply.message == "Morning! Just saw this."


async def test_owner_takeover_cancels_pending_reply_and_pauses_the_chat(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    daemon, clock, owner, contact, carl, seen = await slow_reader(
        sandbox,
        sandbox_clients,
        make_daemon,
        fake_openai,
        read_delay=60,
        takeover_minutes=30,
        takeover_resume="drop",  # what arrives meanwhile is the owner's to answer
    )

    await carl.send_message(owner.id, "quick question")
    scheduled = await wait_for_event(daemon, "reply.scheduled")

    phone = await sandbox_clients.signed_in(OWNER_PHONE)
    await phone(functions.contacts.GetContactsRequest(hash=0))
    await phone.send_message(contact.id, "I'll answer this one myself")
    cancelled = await wait_for_event(daemon, "reply.cancelled")
    assert cancelled["reply"] == scheduled["reply"] and cancelled["reason"] == "paused"

    await clock.advance(120)  # past the read delay: still nothing, the chat is paused
    await carl.send_message(owner.id, "thanks!")
    skipped = await wait_for_event(daemon, "message.skipped")
    assert skipped["reason"] == "paused"
    await wait_idle(daemon)
    assert sandbox.messages_from(owner, contact) == ["I'll answer this one myself"]

    await clock.advance(31 * 60)  # the takeover is over
    fake_openai.queue_reply(brain_reply("Anytime!"))
    await carl.send_message(owner.id, "one more thing")
    await wait_for_event(daemon, "reply.scheduled", after=scheduled["id"])
    await clock.advance(61)
    manual = await seen.next_message()  # what the owner wrote by hand came first
    assert manual.message == "I'll answer this one myself"
    reply = await seen.next_message()
    assert reply.message == "Anytime!"
    assert fake_openai.chat_requests and len(fake_openai.chat_requests) == 1


async def test_three_quick_messages_get_one_reply_to_all(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(
            fake_openai.base_url + "/v1",
            twin={"debounce_seconds": 1.0, "debounce_max_seconds": 5},
        )
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    seen = Observed(carl, owner.id)
    fake_openai.queue_reply(brain_reply("Yes, yes and 7 pm works."))

    for text in ("are you coming tonight?", "bring the charger", "7 pm ok?"):
        await carl.send_message(owner.id, text)
    reply = await seen.next_message()
    assert reply.message == "Yes, yes and 7 pm works."
    await wait_idle(daemon)
    assert len(fake_openai.chat_requests) == 1
    prompt = " ".join(m["content"] for m in fake_openai.last_messages if m["role"] == "user")
    for text in ("are you coming tonight?", "bring the charger", "7 pm ok?"):
        assert text in prompt
    assert sandbox.messages_from(owner, contact) == ["Yes, yes and 7 pm works."]


async def test_provider_outage_then_recovery_and_retry_after(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    seen = Observed(carl, owner.id)
    fake_openai.fail_next(times=2, status=500)
    fake_openai.fail_next(times=1, status=429, retry_after=1)
    fake_openai.queue_reply(brain_reply("Sorry, phone was acting up."))

    await carl.send_message(owner.id, "hello?")
    reply = await seen.next_message(timeout=20)
    assert reply.message == "Sorry, phone was acting up."
    retries = []
    last = 0
    while len(retries) < 3:
        event = await wait_for_event(daemon, "reply.retry", after=last)
        last = event["id"]
        retries.append(event)
    assert retries[-1]["delay"] >= 1.0  # the provider's Retry-After was honoured
    assert sandbox.messages_from(owner, contact) == ["Sorry, phone was acting up."]


async def test_requires_human_escalates_to_saved_messages(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    fake_openai.queue_reply(brain_reply("", requires_human=True, intent="money request"))

    await carl.send_message(owner.id, "can you lend me $500? https://pay.example/x")
    escalated = await wait_for_event(daemon, "reply.escalated")
    assert escalated["intent"] == "money request"
    notes = sandbox.messages_from(owner, owner)
    assert len(notes) == 1 and "Carl" in notes[0] and "money request" in notes[0]
    assert "https://" not in notes[0]
    assert sandbox.messages_from(owner, contact) == []
    status, body = await daemon.call("GET", "/dialogs")
    assert next(d for d in body["dialogs"] if d["id"] == contact.id)["paused"] is True


async def test_an_edit_before_the_reply_is_what_the_brain_reads(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    daemon, clock, owner, contact, carl, seen = await slow_reader(
        sandbox, sandbox_clients, make_daemon, fake_openai, read_delay=30
    )
    fake_openai.queue_reply(brain_reply("Thursday works."))

    sent = await carl.send_message(owner.id, "meet on Wednsday?")
    await wait_for_event(daemon, "reply.scheduled")
    await carl.edit_message(owner.id, sent.id, "meet on Thursday?")
    await wait_for_event(daemon, "message.edited")
    await clock.advance(31)
    reply = await seen.next_message()
    assert reply.message == "Thursday works."
    prompt = " ".join(m["content"] for m in fake_openai.last_messages if m["role"] == "user")
    assert "meet on Thursday?" in prompt and "Wednsday" not in prompt


async def test_a_deleted_message_cancels_its_pending_reply(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    daemon, clock, owner, contact, carl, seen = await slow_reader(
        sandbox, sandbox_clients, make_daemon, fake_openai, read_delay=30
    )

    sent = await carl.send_message(owner.id, "oops, wrong chat")
    scheduled = await wait_for_event(daemon, "reply.scheduled")
    await carl.delete_messages(owner.id, [sent.id], revoke=True)  # private: no chat id on it
    cancelled = await wait_for_event(daemon, "reply.cancelled")
    assert cancelled["reply"] == scheduled["reply"] and cancelled["reason"] == "deleted"
    await clock.advance(31)
    await wait_idle(daemon)
    assert fake_openai.chat_requests == []
    assert sandbox.messages_from(owner, contact) == []
