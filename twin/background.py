"""Background tasks' one way to end: cancelled, then awaited until they have; a pass repeated
every so many seconds; and whose turn a periodic pass is when several processes share the
database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

Turn = Callable[[], Awaitable[bool]]


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (None: nothing to do) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set (True) or `seconds` have passed (False). Not `wait_for`: on
    Python 3.11 it drops a cancel that lands as the event is set, so a loop sleeping here would
    run on and whoever stops it would wait for ever."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def always() -> bool:
    """The turn of a process alone on its database: every pass is its own."""
    return True


class Periodic:
    """`run` now and then every `seconds` while started, as the task `name`; a pass that
    fails is logged on `log` and the next one tries again (the database may be out)."""

    def __init__(
        self, name: str, run: Callable[[], Awaitable[object]], seconds: float, log: logging.Logger
    ) -> None:
        self.name, self._run, self.seconds, self._log = name, run, seconds, log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self._run()
            except Exception as exc:
                self._log.warning("%s: the pass failed, tried again later: %s", self.name, exc)
            await asyncio.sleep(self.seconds)
