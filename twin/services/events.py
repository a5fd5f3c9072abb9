"""The event log: every pipeline transition is stored (audit) and announced (SSE listeners)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger("twin.events")


class EventStore(Protocol):
    async def append_event(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int: ...


class EventLog:
    """Appends events durably, then wakes everyone waiting in `wait_after()`."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._changed = asyncio.Condition()
        self.last_id = 0

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
        log.debug("event %s %s %s", event_id, type, dict(data or {}))
        async with self._changed:
            self.last_id = max(self.last_id, event_id)
            self._changed.notify_all()
        return event_id

    async def wait_after(self, last_id: int, timeout: float) -> bool:
        """Wait until an event newer than `last_id` exists; False on timeout."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.last_id > last_id), timeout
                )
            except TimeoutError:
                return False
        return True
