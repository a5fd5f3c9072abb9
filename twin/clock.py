"""Time, from one injected clock: the system clock in production, a manual one in tests.

Domain policies take `now` as an argument; services get it from a Clock, so a test can move
time (a deferred reply "at the next opening", a takeover that expires) without waiting.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from twin.background import woken
from twin.ports import Clock

__all__ = ["Clock", "ManualClock", "SystemClock"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        if seconds <= 0:
            return not (wake is not None and wake.is_set())
        if wake is None:
            await asyncio.sleep(seconds)
            return True
        return not await woken(wake, seconds)


class ManualClock:
    """Time moves only when the test says so; sleepers wake when their deadline is reached."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def advance(self, seconds: float = 0.0, *, to: datetime | None = None) -> None:
        self._now = to if to is not None else self._now + timedelta(seconds=seconds)
        async with self._moved:
            self._moved.notify_all()

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        deadline = self._now + timedelta(seconds=seconds)
        waiter = asyncio.ensure_future(self._until(deadline))
        waits = {waiter}
        if wake is not None:
            waits.add(asyncio.ensure_future(wake.wait()))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waiter in done

    async def _until(self, deadline: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= deadline)
