"""The event relay between processes (twin.services.events + twin.db.cluster): this process's
committed events are handed to the relay with their types; another process's wake the streams
here and tell their types to the remote listeners (a draft's note sent by the bot served here),
but call no in-process listener (their reactions — a note to the owner, a re-queue, a log
line — belong to the process that made them)."""

from __future__ import annotations

import asyncio

from twin.services.events import (
    EventLog,
    RemoteEvents,
    StagedEvent,
    parse_relayed,
    relay_payload,
)


class Store:
    async def append_event(self, type, data=None, *, account_id=None, chat_id=None) -> int:
        return 1


async def test_local_events_are_relayed_and_remote_ones_only_wake_streams() -> None:
    log = EventLog(Store())
    relayed: list[list[int]] = []
    heard: list[str] = []
    told: list[RemoteEvents] = []
    log.relay = lambda committed: relayed.append([event.id for event in committed])
    log.subscribe(lambda event: heard.append(event.type))
    log.on_remote(told.append)

    log.publish(StagedEvent(3, "reply.sent", {}), None, StagedEvent(4, "draft.created", {}))
    assert relayed == [[3, 4]]
    assert heard == ["reply.sent", "draft.created"] and told == []

    async def another_process_commits() -> None:
        log.take_remote([7, 6], RemoteEvents(frozenset({"draft.created"}), frozenset({2})))

    # gather starts the stream's wait first; it is woken, well before its timeout
    woke, _ = await asyncio.wait_for(
        asyncio.gather(log.wait_after(4, timeout=30), another_process_commits()), 5
    )
    assert woke is True
    assert log.last_id == 7
    assert heard == ["reply.sent", "draft.created"]  # no listener called for them
    assert [t.types for t in told] == [{"draft.created"}]  # only what listens for remote ones
    assert relayed == [[3, 4]]  # and not relayed again
    log.take_remote([5])  # older than what is known: nothing to wake
    assert log.last_id == 7


def test_the_payload_tells_the_newest_id_the_types_and_the_accounts() -> None:
    batch = [
        StagedEvent(11, "reply.scheduled", {}, account_id=3),
        StagedEvent(12, "draft.created", {}, account_id=3),
        StagedEvent(10, "settings.changed", {}),
    ]
    payload = relay_payload(batch)
    assert payload == "12 draft.created,reply.scheduled,settings.changed 3"
    ids, told = parse_relayed(payload)
    assert ids == [12] and told.any_of("reply.requeued", "reply.scheduled")
    assert told.touches({3, 9}) and not told.touches({9})
    assert not told.any_of("reply.requeued")
    # an older process's payload (ids only) still wakes the streams; garbage is no payload
    ids, told = parse_relayed("5,7")
    assert ids == [5, 7] and not told.any_of("draft.created") and not told.touches({1})
    assert parse_relayed("x y z") is None and parse_relayed("") is None
    unknown = RemoteEvents.unknown()  # after a reconnect: anything may have happened
    assert unknown.any_of("draft.created") and unknown.touches({1})
