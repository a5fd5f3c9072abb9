"""The event relay between processes (twin.services.events + twin.db.cluster): this process's
committed events are handed to the relay; another process's wake the streams here but call
no in-process listener (their reactions — a note to the owner, a re-queue, a log line — belong
to the process that made them)."""

from __future__ import annotations

import asyncio

from twin.services.events import EventLog, StagedEvent


class Store:
    async def append_event(self, type, data=None, *, account_id=None, chat_id=None) -> int:
        return 1


async def test_local_events_are_relayed_and_remote_ones_only_wake_streams() -> None:
    log = EventLog(Store())
    relayed: list[list[int]] = []
    heard: list[str] = []
    log.relay = relayed.append
    log.subscribe(lambda event: heard.append(event.type))

    log.publish(StagedEvent(3, "reply.sent", {}), None, StagedEvent(4, "draft.created", {}))
    assert relayed == [[3, 4]] and heard == ["reply.sent", "draft.created"]

    async def another_process_commits() -> None:
        log.take_remote([7, 6])

    # gather starts the stream's wait first; it is woken, well before its timeout
    woke, _ = await asyncio.wait_for(
        asyncio.gather(log.wait_after(4, timeout=30), another_process_commits()), 5
    )
    assert woke is True
    assert log.last_id == 7
    assert heard == ["reply.sent", "draft.created"]  # no listener called for them
    assert relayed == [[3, 4]]  # and not relayed again
    log.take_remote([5])  # older than what is known: nothing to wake
    assert log.last_id == 7
