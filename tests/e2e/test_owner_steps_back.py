"""The twin steps back (issue 17 §2), end to end on the sandbox with the owner's phone as a
second session of the owner's account: a grace-period reply cancelled by the owner reading the
chat, the takeover restarted by each owner message and the contact answered when it ends (the
trigger a reply job, surviving a restart). The daemon never sets the owner online, and its own
read receipts never count as the owner's.

The daemon runs on a ManualClock; the sandbox's message dates move with it
(`clock.date_offset`), so "the owner's last message" and the daemon's now agree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from telethon import functions, types

from tests.e2e.conftest import (
    OWNER_PHONE,
    brain_reply,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from twin import keys
from twin.app import Adapters
from twin.clock import ManualClock


class Setup:
    def __init__(self, sandbox, daemon, clock, owner, contact, carl, phone) -> None:
        self.sandbox, self.daemon, self.clock = sandbox, daemon, clock
        self.owner, self.contact, self.carl, self.phone = owner, contact, carl, phone

    async def advance(self, seconds: float) -> None:
        """Time passes for the daemon and for the dates the sandbox writes."""
        self.sandbox.clock.date_offset += seconds
        await self.clock.advance(seconds)

    async def idle(self) -> None:
        worker = self.daemon.app[keys.SERVICES]["worker"]
        await asyncio.wait_for(worker.idle.wait(), 10)

    async def owners_copy(self) -> int:
        """The id of the newest message of the chat as the owner's account numbers it."""
        [newest] = await self.phone.get_messages(self.contact.id, limit=1)
        return newest.id

    def sent_by_owner(self) -> list[str]:
        return self.sandbox.messages_from(self.owner, self.contact)


async def start(sandbox, sandbox_clients, make_daemon, fake_openai, **twin) -> Setup:
    owner, contact = people(sandbox)
    clock = ManualClock(datetime.now(UTC))
    daemon = await make_daemon(
        adapters=Adapters(clock=clock),
        **fast_pipeline(
            fake_openai.base_url + "/v1",
            twin={"debounce_seconds": 0, **twin},
            humanize={
                "read_delay_median": 5,
                "read_delay_min": 5,
                "read_delay_max": 5,
                "typing_cps": 0,
                "bubble_pause": 0,
            },
        ),
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    phone = await sandbox_clients.signed_in(OWNER_PHONE)  # the owner's phone
    await phone(functions.contacts.GetContactsRequest(hash=0))
    return Setup(sandbox, daemon, clock, owner, contact, carl, phone)


async def test_a_read_on_the_phone_cancels_the_reply_waiting_out_its_grace(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    s = await start(sandbox, sandbox_clients, make_daemon, fake_openai, grace_minutes=5)

    await s.carl.send_message(s.owner.id, "are you there?")
    scheduled = await wait_for_event(s.daemon, "reply.scheduled")
    assert any(line.startswith("grace period: ") for line in scheduled["explain"])
    assert scheduled["delay_s"] >= 5 * 60 - 2  # the reply waits out the grace period

    await s.phone.send_read_acknowledge(s.contact.id, max_id=await s.owners_copy())
    cancelled = await wait_for_event(s.daemon, "reply.cancelled")
    assert (cancelled["reply"], cancelled["reason"]) == (scheduled["reply"], "owner_read")
    read = await wait_for_event(s.daemon, "owner.read")
    assert read["cancelled"] == 1
    await s.advance(6 * 60)
    await s.idle()
    assert s.sent_by_owner() == [] and not fake_openai.chat_requests
    status, body = await s.daemon.call("GET", "/messages", params={"chat": s.contact.id})
    assert status == 200
    assert [(m["state"], m["state_reason"]) for m in body["messages"]] == [
        ("cancelled", "owner_read")
    ]

    # Unread past the grace period: the twin answers, marking the chat read itself — which
    # is never taken for the owner's read, even when Telegram replays it (a getDifference).
    fake_openai.queue_reply(brain_reply("Yes, here!"))
    await s.carl.send_message(s.owner.id, "hello??")
    await wait_for_event(s.daemon, "reply.scheduled", after=scheduled["id"])
    await s.advance(6 * 60)
    await wait_for_event(s.daemon, "reply.sent")
    assert s.sent_by_owner() == ["Yes, here!"]
    answered = (await s.phone.get_messages(s.contact.id, limit=2))[1].id  # "hello??"
    s.sandbox.inject(s.owner, types.UpdateReadHistoryInbox(
        peer=types.PeerUser(s.contact.id), max_id=answered, still_unread_count=0,
        pts=0, pts_count=0,  # no pts: applied in any order, the client's state untouched
    ))
    await s.carl.send_message(s.owner.id, "ok, talk later")
    await s.phone.send_read_acknowledge(s.contact.id, max_id=await s.owners_copy())
    later = await wait_for_event(s.daemon, "owner.read", after=read["id"])
    assert later["max_id"] == await s.owners_copy()  # the replay before it was dropped

    # The daemon never made the owner look online (Telethon sends no account.updateStatus)…
    assert [u for u in s.sandbox.status_updates if u.user_id == s.owner.id] == []
    # …while the phone going online is the owner's activity ("only if offline" reads it).
    await s.phone(functions.account.UpdateStatusRequest(offline=False))
    online = await wait_for_event(s.daemon, "owner.presence")
    assert online["online"] and online["until"] is not None
    repo = s.daemon.app[keys.DATABASE].repo
    account = await repo.get_account("default")
    presence = await repo.owner_activity(account.id)
    assert presence is not None and presence.active_as_of(s.clock.now()) == s.clock.now()


async def test_each_owner_message_restarts_the_takeover_and_its_end_answers_the_contact(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    s = await start(
        sandbox, sandbox_clients, make_daemon, fake_openai,
        takeover_minutes=30, takeover_max_minutes=120,
    )

    async def paused_until() -> datetime:
        status, body = await s.daemon.call("GET", "/chats")
        assert status == 200
        [chat] = [c for c in body["chats"] if c["id"] == s.contact.id]
        return datetime.fromisoformat(chat["paused_until"])

    await s.carl.send_message(s.owner.id, "quick question")
    scheduled = await wait_for_event(s.daemon, "reply.scheduled")
    first = await s.phone.send_message(s.contact.id, "I'll handle this one")
    cancelled = await wait_for_event(s.daemon, "reply.cancelled")
    assert (cancelled["reply"], cancelled["reason"]) == (scheduled["reply"], "paused")
    paused = await wait_for_event(s.daemon, "chat.paused")
    assert paused["takeover_since"] == first.date.isoformat()
    assert await paused_until() == first.date + timedelta(minutes=30)

    await s.advance(20 * 60)
    second = await s.phone.send_message(s.contact.id, "one sec")
    restarted = await wait_for_event(s.daemon, "chat.paused", after=paused["id"])
    assert restarted["takeover_since"] == first.date.isoformat()  # the same takeover…
    assert await paused_until() == second.date + timedelta(minutes=30)  # …counted from it

    await s.carl.send_message(s.owner.id, "ok?")
    deferred = await wait_for_event(s.daemon, "reply.scheduled", after=restarted["id"])
    assert deferred["action"] == "defer"
    assert any("takeover_resume = answer" in line for line in deferred["explain"])
    await s.carl.send_message(s.owner.id, "hello?")  # joins it: one answer to both
    joined = await wait_for_event(s.daemon, "reply.rescheduled", after=deferred["id"])
    assert joined["reply"] == deferred["reply"]

    await s.advance(15 * 60)  # past the first pause's end, not the restarted one's
    await s.idle()
    assert s.sent_by_owner() == ["I'll handle this one", "one sec"]

    await s.daemon.restart()  # the trigger at the pause's end is a stored reply job
    await s.daemon.app[keys.ACCOUNTS].get("default")  # waits for the start-up connect
    fake_openai.queue_reply(brain_reply("Sorry for the wait: yes!"))
    await s.advance(16 * 60)
    sent = await wait_for_event(s.daemon, "reply.sent", timeout=20)
    assert sent["reply"] == deferred["reply"]
    assert s.sent_by_owner() == ["I'll handle this one", "one sec", "Sorry for the wait: yes!"]
    assert len(fake_openai.chat_requests) == 1
    asked = " ".join(m["content"] for m in fake_openai.last_messages if m["role"] == "user")
    assert "ok?" in asked and "hello?" in asked
