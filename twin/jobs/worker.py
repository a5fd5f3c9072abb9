"""The reply worker: claims due jobs from the replies table and runs them.

The replies table itself is the durable job store (not APScheduler's): a job is a row with a
state, a due time (`reply_at`, or `next_attempt_at` after a failure) and a lease. The worker
sleeps until the soonest due time or until the pipeline wakes it (a new message, a retry), then
claims due rows under a lease so no job runs twice. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from twin.services.clock import Clock

log = logging.getLogger("twin.worker")

LEASE_SECONDS = 900.0  # longer than any single run (typing is capped), renewed by re-claiming
IDLE_WAKE = 60.0  # re-check at least this often, in case a wake-up was missed
CLAIM_BATCH = 20


class ReplyWorker:
    def __init__(self, repo: Any, pipeline: Any, clock: Clock, *, concurrency: int = 50) -> None:
        self._repo = repo
        self._pipeline = pipeline
        self._clock = clock
        self._running: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()  # set whenever nothing is running or due (tests wait on it)

    async def start(self) -> None:
        # One daemon process owns the queue: leases left by a crashed run are void at once.
        released = await self._repo.release_leases()
        if released:
            log.info("resuming %d interrupted repl%s", released, "y" if released == 1 else "ies")
        self._task = asyncio.create_task(self._loop(), name="reply worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running = list(self._running.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        wake = self._pipeline.wake
        while True:
            wake.clear()
            try:
                claimed = await self._claim()
            except Exception:
                log.exception("claiming due replies failed; retrying")
                claimed = 0
            if claimed:
                continue  # more may be due right away
            if not self._running:
                self.idle.set()
            await self._clock.sleep(await self._seconds_until_due(), wake)
            self.idle.clear()

    async def _claim(self) -> int:
        now = self._clock.now()
        free = CLAIM_BATCH - len(self._running)
        if free <= 0:
            return 0
        jobs = await self._repo.claim_due_replies(now, LEASE_SECONDS, free)
        for job in jobs:
            if job.id in self._running:
                continue
            task = asyncio.create_task(self._run(job), name=f"reply {job.id}")
            self._running[job.id] = task
        return len(jobs)

    async def _run(self, job: Any) -> None:
        try:
            async with self._slots:
                await self._pipeline.execute(job)
        except Exception:
            log.exception("reply %s: worker error", job.id)
        finally:
            self._running.pop(job.id, None)
            self._pipeline.wake.set()  # a finished job may unblock the next one

    async def _seconds_until_due(self) -> float:
        try:
            due = await self._repo.next_due_at()
        except Exception:
            return IDLE_WAKE
        if due is None:
            return IDLE_WAKE
        return max(0.0, min(IDLE_WAKE, (due - self._clock.now()).total_seconds()))
