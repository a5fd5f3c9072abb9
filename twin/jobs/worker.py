"""The reply worker: claims due jobs from the replies table and runs them.

The replies table itself is the durable job store (not APScheduler's): a job is a row with a
state, a due time (`reply_at`, or `next_attempt_at` after a failure) and a lease. The worker
sleeps until the soonest due time or until the pipeline wakes it (a new message, a retry, a
finished job that freed a slot), then claims due rows under a lease so no job runs twice; the
claim and the next due time are one round trip to the database. A job that is due the moment it
is created comes straight from the pipeline instead (`lease_until` / `submit`): the pipeline's
fast path creates it already leased, in the transaction that schedules it. The worker knows the
pipeline only as `Jobs` (run one, read what its first step needs) and shares one `wake` event
with it; it never touches the pipeline's attributes. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Protocol

from twin.background import always, cancel
from twin.db.records import ReplyRecord
from twin.domain.backoff import Backoff
from twin.errors import StorageUnavailable
from twin.ports import Clock, Store, Tx
from twin.services.pipeline.records import Prepared

log = logging.getLogger("twin.worker")

LEASE_SECONDS = 900.0  # longer than any single run (typing is capped), renewed by re-claiming
IDLE_WAKE = 60.0  # re-check at least this often, in case a wake-up was missed
DEFAULT_CONCURRENCY = 50  # jobs running at once (mostly waiting on the LLM and Telegram)
CLAIM_RETRY = Backoff(base=0.5, cap=15.0)  # claims while the database is unavailable


class Jobs(Protocol):
    """What the worker runs (twin.services.replies.ReplyPipeline)."""

    def job_context(self, tx: Tx, reply: ReplyRecord) -> Prepared | None:
        """Inside the claiming transaction: what the job's first step would read."""
        ...

    async def execute(self, reply: ReplyRecord, prepared: Prepared | None = None) -> None: ...


class ReplyWorker:
    def __init__(
        self,
        repo: Store,
        jobs: Jobs,
        clock: Clock,
        *,
        wake: asyncio.Event,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._repo = repo
        self._jobs = jobs
        self._wake = wake  # shared with the pipeline: set when a job may be due sooner
        self._clock = clock
        self._running: dict[int, asyncio.Task[None]] = {}
        self._concurrency = concurrency
        # Claims and hand-overs keep `_running` within `concurrency`; the semaphore also bounds
        # the hand-overs granted while their creating transactions were still under way.
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._backlog = False  # the last claim left due jobs for lack of free slots
        self._stalled: set[int] = set()  # jobs stopped by a database outage, still leased
        self._rng = random.Random()
        self.idle = asyncio.Event()  # set whenever nothing is running or due (tests wait on it)
        # Several processes on one PostgreSQL (twin.db.cluster): the Telegram accounts this
        # process serves (None: every account's jobs are its own), and whether this process is
        # alone, so the leases a crashed run left may be voided at start.
        self.mine: Callable[[], Collection[int] | None] = lambda: None
        self.alone: Callable[[], Awaitable[bool]] = always

    def nudge(self) -> None:
        """Claim again now: a job may have become due (made by another process)."""
        self._wake.set()

    async def start(self) -> None:
        # The only daemon process owns the queue: leases left by a crashed run are void at
        # once. With other processes running, a lease may be theirs: taking an account over
        # voids its jobs' leases instead (twin.services.accounts).
        try:
            released = await self._repo.release_leases() if await self.alone() else 0
        except Exception as exc:  # the database may be down at start: leases expire anyway
            log.error("could not release leases at start (%s)", exc)
            released = 0
        if released:
            log.info("resuming %d interrupted repl%s", released, "y" if released == 1 else "ies")
        self._task = asyncio.create_task(self._loop(), name="reply worker")

    async def stop(self) -> None:
        loop, self._task = self._task, None
        await cancel(loop)
        running = list(self._running.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        wake = self._wake
        retry: float | None = None  # while the database is unavailable: the backoff's last wait
        while True:
            wake.clear()
            try:
                wait = self._seconds_until(await self._claim())
                if retry is not None:
                    log.info("the database is back: reply jobs run again")
                retry = None
            except StorageUnavailable as exc:
                if retry is None:
                    log.warning("cannot claim due replies: %s; retrying with backoff", exc)
                retry = wait = CLAIM_RETRY.next_delay(retry, self._rng)
            except Exception:
                log.exception("claiming due replies failed; retrying")
                wait = self._seconds_until(await self._next_due())
            if not self._running:
                self.idle.set()
            await self._clock.sleep(wait, wake)
            self.idle.clear()

    async def _claim(self) -> datetime | None:
        """Claim the due jobs there are free slots for and start them; returns when the next
        unclaimed job is due (both in one round trip to the database)."""
        now = self._clock.now()
        free = self._concurrency - len(self._running)
        if free <= 0:
            self._backlog = True  # a finishing job wakes the loop to claim the rest
            return None

        context = self._jobs.job_context
        stalled = sorted(self._stalled)
        mine = self.mine()

        def work(tx: Tx) -> tuple[list[ReplyRecord], list[Prepared | None], datetime | None]:
            if stalled:  # jobs the database stopped: claimable again at once
                tx.release_leases(stalled)
            jobs = tx.claim_due_replies(now, LEASE_SECONDS, free, mine)
            # What each job's first step reads, read here: one round trip for the batch.
            contexts = [context(tx, job) for job in jobs]
            return jobs, contexts, tx.next_due_at()

        jobs, contexts, due = await self._repo.transaction(work)
        self._stalled.difference_update(stalled)
        self._backlog = len(jobs) >= free
        for job, job_context in zip(jobs, contexts, strict=True):
            if job.id in self._running:
                continue
            task = asyncio.create_task(self._run(job, job_context), name=f"reply {job.id}")
            self._running[job.id] = task
        return due

    @property
    def stalled(self) -> frozenset[int]:
        """Jobs a database outage stopped; they resume at the first claim that succeeds."""
        return frozenset(self._stalled)

    def lease_until(self, now: datetime) -> datetime | None:
        """The lease for a job created due right now and handed over with `submit()`; None
        when there is no free slot for it (it then waits for a claim like any other)."""
        if self._task is None or self._backlog or len(self._running) >= self._concurrency:
            return None  # stopped, or older due jobs wait for a slot: first come, first served
        return now + timedelta(seconds=LEASE_SECONDS)

    def submit(self, job: ReplyRecord, prepared: Prepared | None = None) -> None:
        """Run a job the pipeline created already leased (see `lease_until()`)."""
        if job.id in self._running:
            return
        self.idle.clear()
        self._running[job.id] = asyncio.create_task(
            self._run(job, prepared), name=f"reply {job.id}"
        )

    async def _run(self, job: ReplyRecord, prepared: Prepared | None = None) -> None:
        try:
            async with self._slots:
                await self._jobs.execute(job, prepared)
        except StorageUnavailable as exc:
            # Its last committed state stands (a step is recorded before its side effect), so
            # it resumes from there; its lease is released by the first claim that succeeds.
            log.warning("reply %s: paused until the database is back (%s)", job.id, exc)
            self._stalled.add(job.id)
            self._wake.set()  # the loop's claims back off until it answers
        except Exception:
            log.exception("reply %s: worker error", job.id)
        finally:
            self._running.pop(job.id, None)
            # Wake the loop when this frees a slot that due jobs wait for, or when it was the
            # last job (to report idle). New and retried jobs wake it themselves.
            if self._backlog or not self._running:
                self._wake.set()

    async def _next_due(self) -> datetime | None:
        try:
            return await self._repo.next_due_at()
        except Exception:
            return None

    def _seconds_until(self, due: datetime | None) -> float:
        if due is None:
            return IDLE_WAKE
        return max(0.0, min(IDLE_WAKE, (due - self._clock.now()).total_seconds()))
