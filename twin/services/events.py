"""The event log: every pipeline transition is stored (audit) and announced (SSE listeners).

Two ways to log an event, both durable before anyone is told:

* `emit(...)` appends it in its own transaction, then announces it;
* `stage(tx, ...)` appends it inside a `Repository.transaction` together with the state change
  it records (one round trip, and the change and its event are committed or lost together);
  the caller hands the result to `publish()` once that transaction has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("twin.events")

Listener = Callable[["StagedEvent"], None]


class EventStore(Protocol):
    async def append_event(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An event appended inside a transaction; `publish()` it after the commit."""

    id: int
    type: str
    data: Mapping[str, Any]
    account_id: int | None = None
    chat_id: int | None = None


class EventLog:
    """Appends events durably, then wakes everyone waiting in `wait_after()` and calls the
    subscribed listeners (in-process reactions, e.g. dropping cached settings)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._waiters: set[asyncio.Future[None]] = set()
        self._listeners: list[Listener] = []
        self.last_id = 0

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(event)` for every event announced from now on (synchronously, in the
        announcing task: keep it quick and let it not raise)."""
        self._listeners.append(listener)

    async def emit(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int:
        event_id = await self._store.append_event(
            type, data, account_id=account_id, chat_id=chat_id
        )
        self.publish(StagedEvent(event_id, type, dict(data or {}), account_id, chat_id))
        return event_id

    @staticmethod
    def stage(
        tx: Any,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> StagedEvent:
        """Append an event inside the transaction `tx` (a `Repository.transaction`)."""
        data = dict(data or {})
        event_id = tx.append_event(type, data, account_id=account_id, chat_id=chat_id)
        return StagedEvent(event_id, type, data, account_id, chat_id)

    def stage_reply(self, tx: Any, type: str, reply: Any, **data: Any) -> StagedEvent:
        """An event about a reply job (`data` gets its id), appended inside `tx`."""
        return self.stage(
            tx,
            type,
            {"reply": reply.id, **data},
            account_id=reply.account_id,
            chat_id=reply.chat_id,
        )

    def publish(self, *events: StagedEvent | None) -> None:
        """Announce events whose transaction has committed (None entries are skipped)."""
        announced = False
        for event in events:
            if event is None:
                continue
            announced = True
            if log.isEnabledFor(logging.DEBUG):
                log.debug("event %s %s %s", event.id, event.type, dict(event.data))
            self.last_id = max(self.last_id, event.id)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed on %s", event.type)
        if not announced:
            return
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_after(self, last_id: int, timeout: float) -> bool:
        """Wait until an event newer than `last_id` exists; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last_id <= last_id:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return self.last_id > last_id
            finally:
                self._waiters.discard(waiter)
        return True
