"""The jobs running in this process, and the per-chat locks of planning and pausing."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Run:
    """An executing job: `cancelled` stops its waits at once (the owner took over)."""

    reply_id: int
    chat_id: int
    cancelled: asyncio.Event


class Runs:
    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}
        # per (account, peer): held only while someone waits on it
        self._locks: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @contextmanager
    def running(self, reply_id: int, chat_id: int) -> Iterator[Run]:
        run = self._runs[reply_id] = Run(reply_id, chat_id, asyncio.Event())
        try:
            yield run
        finally:
            if self._runs.get(reply_id) is run:
                del self._runs[reply_id]

    def interrupt(self, chat_id: int) -> None:
        """Stop the waits of the chat's running jobs and make them stop before their next
        send. Raised before the cancellation is committed: a running job checks the flag right
        before each send, so it can never send once the cancellation is committed (if the job
        finishes first, or the cancellation fails, the flag is moot: it dies with the run)."""
        for run in self._runs.values():
            if run.chat_id == chat_id:
                run.cancelled.set()

    def lock(self, account_id: int, peer_id: int) -> asyncio.Lock:
        """The chat's lock: planning a message and pausing the chat never interleave."""
        key = (account_id, peer_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
