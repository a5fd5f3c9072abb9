"""What every fault test asserts at the end: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tests.e2e.conftest import wait_for_event
from twin import keys


async def until(predicate: Any, event: asyncio.Event, timeout: float, what: str) -> None:
    """Wait until `predicate()` holds, re-checking whenever `event` is set (never polling)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event.clear()
        if predicate():
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), remaining)


async def incoming_states(daemon: Any, peer_id: int) -> list[str]:
    status, body = await daemon.call("GET", f"/messages?chat={peer_id}&limit=500")
    if status == 404:
        return []  # nothing stored for this chat yet
    assert status == 200, body
    return [m["state"] for m in body["messages"] if m["direction"] == "incoming"]


async def wait_all_answered(daemon: Any, peer_id: int, count: int, timeout: float = 30) -> None:
    """Until the chat holds `count` incoming messages and every one is answered (`sent`)."""
    after = 0
    while True:
        states = await incoming_states(daemon, peer_id)
        if len(states) == count and all(state == "sent" for state in states):
            return
        event = await wait_for_event(daemon, "reply.sent", after=after, timeout=timeout)
        after = event["id"]


async def assert_exactly_once(daemon: Any, sandbox: Any, owner: Any, contact: Any) -> None:
    """Every incoming message is linked to one reply that was sent, and what the contact
    received is exactly the sent bubbles: nothing lost, nothing sent twice."""
    repo = daemon.app[keys.DATABASE].repo
    account_id = await daemon.app[keys.DIRECTORY].id_of("default")
    chat = await repo.get_chat_by_peer(account_id, contact.id)
    rows = await repo.history(account_id, chat.id, limit=1000)
    incoming = [r for r in rows if r.direction.value == "incoming"]
    bubbles = [r for r in rows if r.direction.value == "outgoing" and r.reply_id is not None]
    assert incoming and all(r.state.value == "sent" and r.reply_id for r in incoming)
    sent = [b for b in bubbles if b.state.value == "sent"]
    received = sandbox.messages_from(owner, contact)
    assert len(received) == len(sent), (received, [b.text for b in sent])
    assert sorted(received) == sorted(b.text for b in sent)
    tg_ids = [b.tg_message_id for b in sent]
    assert len(set(tg_ids)) == len(tg_ids)
