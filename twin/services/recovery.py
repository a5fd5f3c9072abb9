"""Outage recovery: replies an outage made fail are re-queued once the dependency works again.

A reply that used up `[twin] max_attempts` on transient errors (5xx, 429, timeouts, connection
errors, Telegram disconnected) is failed with `failure = outage`; one refused for good is
`permanent` and only re-queued by hand (`retry`, POST /replies/{id}/retry). Outage failures
are re-queued when

* a dependency works again: the health registry calls `on_recovered` on the first success of
  a component whose last call had failed (any traffic, e.g. a new message, proves it); or
* a probe succeeds. While outage failures exist and no traffic proves anything, the chat of the
  oldest one is re-queued with one attempt left — a real attempt, nothing wasted if it works —
  after `[twin] retry_base_seconds`, doubling up to `retry_max_seconds` after each probe that
  failed again (at least PROBE_FLOOR seconds apart). When a reply of that chat is sent, the
  rest follow. The probe also covers what the registry cannot know: Telegram outages (not in
  the registry), and a restart, which forgets the registry's state while the database still
  holds the failures.

A re-queue gives a fresh budget (attempts = 0): the outage that used up the last one is over,
and `[telegram] max_catch_up_age` bounds how long a reply keeps trying across outages: one whose
newest message is older than that when its dependency comes back is not re-queued (failure =
`expired`, its reason says so, event `reply.expired`), as the intake ignores messages that old.
A reply that had stored its bubbles resumes them (`sending`, same random_ids: never sent
twice); the others are generated afresh. Several outage failures of one chat that never reached
`sending` are answered by one reply: the newest is re-queued with the older ones' messages and
the older ones are skipped as `superseded`, so the contact gets one answer, not one per reply.
Owner first: a failed reply whose chat the owner wrote in (from another device) after its newest
message is cancelled (`paused`) instead, as it would have been had it still been pending.

Every re-queue is one guarded transaction per batch (a failed reply moves once), emits
`reply.requeued`, and is summarised in one INFO line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from twin.config import Settings
from twin.db.records import ReplyRecord
from twin.domain.decide import owner_took_over
from twin.domain.models import Direction, Failure, ReplyState, SkipReason
from twin.errors import Conflict, NotFound
from twin.ports import Clock, Store, Tx
from twin.services.events import EventLog, StagedEvent

log = logging.getLogger("twin.recovery")

BATCH = 200  # outage failures handled per transaction
PROBE_FLOOR = 1.0  # seconds between probes at least, however small retry_base_seconds is
PROBE_TIMEOUT = 900.0  # a probe that never finishes (its worker died) counts as failed
IDLE_CHECK = 3600.0  # without any outage failure announced, look again this often
EXPIRED_REASON = "outage outlasted max_catch_up_age: not re-queued"


class RecoveryMetrics:
    """Counters of failed and re-queued replies (in the API's registry: GET /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.failed = Counter(
            "twin_replies_failed",
            "Replies that failed, by kind: outage (re-queued when the dependency works again) "
            "or permanent (re-queued only by hand).",
            ("kind",),
            registry=registry,
        )
        self.requeued = Counter(
            "twin_replies_requeued",
            "Failed replies re-queued, by trigger: recovered (a dependency works again), "
            "probe (the oldest, as a probe), manual (POST /replies/{id}/retry).",
            ("trigger",),
            registry=registry,
        )
        self.expired = Counter(
            "twin_replies_outage_expired",
            "Outage failures left failed: older than max_catch_up_age when the dependency "
            "came back.",
            registry=registry,
        )


class OutageRecovery:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Store,
        events: EventLog,
        clock: Clock,
        wake: asyncio.Event,
        metrics: RecoveryMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._events = events
        self._clock = clock
        self._wake = wake  # the reply worker's: set when re-queued replies are due
        self.metrics = metrics or RecoveryMetrics()
        self._lock = asyncio.Lock()  # one re-queue pass (or probe pick) at a time
        self._failed = asyncio.Event()  # an outage failure was announced: the prober looks
        # the chat being probed, and what its first outcome says (see _verdict)
        self._probe: tuple[int, asyncio.Future[Verdict]] | None = None
        self._probed: set[int] = set()  # chats probed in this round (see _probe_once)
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        events.subscribe(self._on_event)

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._probe_loop(), name="outage probe")

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._task] if self._task is not None else [])]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("re-queue after an outage failed: %s", task.exception())

    # --- triggers ------------------------------------------------------------------------------
    def on_recovered(self, component: str) -> None:
        """The health registry's listener: `component` works again after failing."""
        self._spawn(self.requeue(f"{component} works again"), f"re-queue ({component})")

    def _on_event(self, event: StagedEvent) -> None:
        data = event.data
        if event.type == "reply.failed" and data.get("failure"):
            self.metrics.failed.labels(data["failure"]).inc()
            if data["failure"] == Failure.OUTAGE.value:
                self._failed.set()
        probe = self._probe
        if probe is None or event.chat_id != probe[0] or probe[1].done():
            return
        verdict = _verdict(event)
        if verdict is not None:
            probe[1].set_result(verdict)

    # --- re-queue --------------------------------------------------------------------------------
    async def requeue(self, trigger: str) -> int:
        """Re-queue every outage failure recent enough (the others expire); returns how many
        were re-queued. `trigger` says why, in the log line."""
        total = _Pass()
        async with self._lock:
            more = True
            while more:
                since = self._since()
                done = await self._repo.transaction(
                    lambda tx, since=since: self._pass_tx(tx, since, requeue=True), hot=False
                )
                self._events.publish(*done.events)
                total = total.add(done)
                more = done.more
        self._count(total, "recovered")
        if total.requeued:
            self._wake.set()
        if total.requeued or total.expired or total.cancelled:
            log.info("%s: %s", trigger, total.summary())
        return total.requeued

    def _count(self, done: _Pass, trigger: str) -> None:
        if done.requeued:
            self.metrics.requeued.labels(trigger).inc(done.requeued)
        if done.expired:
            self.metrics.expired.inc(done.expired)

    def _since(self) -> datetime:
        age = self._settings.telegram.max_catch_up_age
        return self._clock.now() - timedelta(seconds=age)

    def _pass_tx(
        self,
        tx: Tx,
        since: datetime,
        *,
        requeue: bool,
        chat_id: int | None = None,
        attempts: int = 0,
        trigger: str = "recovered",
    ) -> _Pass:
        """One batch of outage failures (of one chat with `chat_id`): expire the ones older
        than `since`, and with `requeue` re-queue the others with `attempts` counted (else
        only count them)."""
        failures = tx.outage_failures(BATCH, chat_id=chat_id)
        done = _Pass(more=len(failures) == BATCH)
        fresh: dict[int, list[ReplyRecord]] = {}  # per chat, oldest first
        for reply, newest, owner_active_at, later_id in failures:
            self._know_chat(tx, reply.chat_id)
            if newest is None or newest < since:
                done.events.append(self._expire_tx(tx, reply, newest))
                done.expired += 1
            elif owner_took_over(owner_active_at, newest):
                # The owner wrote in the chat since: they took over, as if it had been pending.
                done.events.append(self._owner_took_over_tx(tx, reply))
                done.cancelled += 1
            elif later_id is not None:
                # A newer reply of the chat read the whole conversation: it answers these
                # messages too (re-queuing this one would answer the contact twice).
                done.events.append(self._merge_tx(tx, reply, tx.get_reply(later_id)))
                done.merged += 1
            else:
                fresh.setdefault(reply.chat_id, []).append(reply)
                done.fresh += 1
        if not requeue:
            done.more = done.more and done.expired > 0  # the fresh ones stay: read them once
            return done
        for replies in fresh.values():
            # The ones that never sent anything are answered by one reply: the newest.
            unsent = [reply for reply in replies if reply.text is None]
            for older in unsent[:-1]:
                done.events.append(self._merge_tx(tx, older, unsent[-1]))
                done.merged += 1
            for reply in replies:
                if reply.text is None and reply is not unsent[-1]:
                    continue  # merged
                _, event = self._requeued_tx(tx, reply, trigger, attempts=attempts)
                done.events.append(event)
                done.requeued += 1
        return done

    def _know_chat(self, tx: Tx, chat_id: int) -> None:
        """Let the event log name the chat (its log lines) when this process has not met it
        yet (failures found after a restart)."""
        if self._events.peer_of(chat_id) is None:
            self._events.remember_chat(chat_id, tx.get_chat(chat_id).peer_id)

    def _expire_tx(self, tx: Tx, reply: ReplyRecord, newest: datetime | None) -> StagedEvent:
        tx.update_reply(
            reply.id,
            expect_state=ReplyState.FAILED,
            failure=Failure.EXPIRED.value,
            reason=EXPIRED_REASON,
        )
        tx.finish_reply_messages(reply.id, ReplyState.FAILED, EXPIRED_REASON)
        return self._events.stage_reply(
            tx,
            "reply.expired",
            reply,
            reason=EXPIRED_REASON,
            previous=reply.reason,
            message_at=newest.isoformat() if newest else None,
        )

    def _owner_took_over_tx(self, tx: Tx, reply: ReplyRecord) -> StagedEvent:
        reason = SkipReason.PAUSED.value
        tx.update_reply(
            reply.id,
            expect_state=ReplyState.FAILED,
            state=ReplyState.CANCELLED,
            reason=reason,
            failure=None,
        )
        tx.finish_reply_messages(reply.id, ReplyState.CANCELLED, reason)
        return self._events.stage_reply(tx, "reply.cancelled", reply, reason=reason)

    def _merge_tx(self, tx: Tx, older: ReplyRecord, newest: ReplyRecord) -> StagedEvent:
        """`older` never sent anything: its messages go to `newest`, which answers them all."""
        reason = SkipReason.SUPERSEDED.value
        tx.update_reply(
            older.id,
            expect_state=ReplyState.FAILED,
            state=ReplyState.SKIPPED,
            reason=reason,
            failure=None,
        )
        incoming = [m.id for m in tx.reply_messages(older.id) if m.direction is Direction.INCOMING]
        # A reply already sent answered them; an active one finishes them with itself.
        state = ReplyState.SENT if newest.state is ReplyState.SENT else ReplyState.SCHEDULED
        tx.attach_messages(newest.id, incoming, message_state=state)
        return self._events.stage_reply(tx, "reply.skipped", older, reason=reason, into=newest.id)

    def _requeued_tx(
        self, tx: Tx, reply: ReplyRecord, trigger: str, *, attempts: int
    ) -> tuple[ReplyRecord, StagedEvent]:
        """Re-queue `reply` (by hand: whatever its failure; else only an outage failure)."""
        failures = None if trigger == "manual" else (Failure.OUTAGE,)
        done = tx.requeue_reply(reply.id, failures=failures, attempts=attempts)
        event = self._events.stage_reply(
            tx,
            "reply.requeued",
            done,
            trigger=trigger,
            state=done.state.value,
            failure=reply.failure.value if reply.failure else None,
            previous=reply.reason,
        )
        return done, event

    # --- by hand ---------------------------------------------------------------------------------
    async def retry(self, reply_id: int, account_id: int) -> ReplyRecord:
        """Re-queue one failed reply of `account_id` now, whatever its failure and age, with a
        fresh budget. NotFound (unknown, or another account's); Conflict unless failed."""

        def work(tx: Tx) -> tuple[ReplyRecord, StagedEvent]:
            reply = tx.get_reply(reply_id)
            if reply.account_id != account_id:
                raise NotFound(f"reply {reply_id} does not exist")
            if reply.state is not ReplyState.FAILED:
                raise Conflict(
                    f"reply {reply_id} is {reply.state.value}: only a failed reply can be retried"
                )
            self._know_chat(tx, reply.chat_id)
            return self._requeued_tx(tx, reply, "manual", attempts=0)

        async with self._lock:  # not while a pass is re-queuing
            reply, event = await self._repo.transaction(work)
        self._events.publish(event)
        self._count(_Pass(requeued=1), "manual")
        self._wake.set()
        return reply

    # --- the probe -------------------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        failed_probes = 0
        while True:
            self._failed.clear()
            try:
                pending = await self._pending()
            except Exception as exc:  # the database may be down: look again soon
                log.warning("outage probe: cannot read failed replies (%s)", exc)
                await self._clock.sleep(self._probe_delay(failed_probes))
                failed_probes += 1
                continue
            if not pending:
                failed_probes = 0
                await self._clock.sleep(IDLE_CHECK, self._failed)
                continue
            await self._clock.sleep(self._probe_delay(failed_probes))
            try:
                verdict = await self._probe_once()
            except Exception as exc:
                log.warning("outage probe failed to start (%s)", exc)
                verdict = Verdict.DOWN
            if verdict is Verdict.WORKS:
                failed_probes = 0
                self._probed.clear()
                await self.requeue("a probe reply was answered")
            elif verdict is Verdict.DOWN:
                failed_probes += 1

    def _probe_delay(self, failed_probes: int) -> float:
        twin = self._settings.twin
        backoff = twin.retry_base_seconds * 2 ** min(failed_probes, 30)
        return max(PROBE_FLOOR, min(twin.retry_max_seconds, backoff))

    async def _pending(self) -> bool:
        """Whether an outage failure recent enough exists (expiring the older ones)."""
        fresh = 0
        async with self._lock:
            since = self._since()
            more = True
            while more:
                done = await self._repo.transaction(
                    lambda tx: self._pass_tx(tx, since, requeue=False), hot=False
                )
                self._events.publish(*done.events)
                self._count(done, "recovered")
                fresh, more = done.fresh, done.more
        return fresh > 0

    async def _probe_once(self) -> Verdict:
        """Re-queue the outage failures of the chat of the oldest one, with one attempt, and
        wait for what the first outcome in that chat says."""
        last_attempt = self._settings.twin.max_attempts - 1
        outcome: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        try:
            async with self._lock:
                since = self._since()
                fresh = [
                    failure.reply
                    for failure in await self._repo.outage_failures(BATCH)
                    if failure.newest_message_at is not None and failure.newest_message_at >= since
                ]
                if not fresh:
                    return Verdict.UNKNOWN
                # The oldest failure of a chat not probed yet in this round: one that can
                # never succeed must not hold back every other chat's.
                oldest = next((r for r in fresh if r.chat_id not in self._probed), None)
                if oldest is None:
                    self._probed.clear()
                    oldest = fresh[0]
                self._probed.add(oldest.chat_id)
                # Listening before the commit: its outcome cannot be announced unheard.
                self._probe = (oldest.chat_id, outcome)
                done = await self._repo.transaction(
                    lambda tx: self._pass_tx(
                        tx,
                        since,
                        requeue=True,
                        chat_id=oldest.chat_id,
                        attempts=last_attempt,
                        trigger="probe",
                    ),
                    hot=False,
                )
            self._events.publish(*done.events)
            self._count(done, "probe")
            if not done.requeued:
                return Verdict.UNKNOWN
            log.info("outage probe, with one attempt each: %s", done.summary())
            self._wake.set()
            try:  # not wait_for (see background.woken): a cancel must not be dropped
                async with asyncio.timeout(PROBE_TIMEOUT):
                    return await outcome
            except TimeoutError:
                return Verdict.DOWN
        finally:
            self._probe = None


class Verdict(Enum):
    """What a probe found."""

    WORKS = "works"  # a reply was sent, or the model answered by escalating
    DOWN = "down"  # a reply failed by an outage again
    UNKNOWN = "unknown"  # a refusal of that one reply, the owner took over, a policy skip


def _verdict(event: StagedEvent) -> Verdict | None:
    """What an event of the probed chat says (None: it is no outcome)."""
    reason = event.data.get("reason")
    if event.type == "reply.sent":
        return Verdict.WORKS
    if event.type == "reply.failed":
        outage = event.data.get("failure") == Failure.OUTAGE.value
        return Verdict.DOWN if outage else Verdict.UNKNOWN
    if event.type == "reply.skipped" and reason != SkipReason.SUPERSEDED:
        return Verdict.WORKS if reason == SkipReason.ESCALATED else Verdict.UNKNOWN
    if event.type == "reply.cancelled":
        return Verdict.UNKNOWN
    return None


@dataclass
class _Pass:
    """What one re-queue pass did (its events are published once it committed)."""

    events: list[StagedEvent] = field(default_factory=list)
    requeued: int = 0
    merged: int = 0
    expired: int = 0
    cancelled: int = 0  # the owner wrote in the chat since
    fresh: int = 0  # recent enough to re-queue
    more: bool = False  # the batch was full: run another

    def summary(self) -> str:
        parts = [f"re-queued {_replies(self.requeued)} failed by an outage"]
        if self.merged:
            parts.append(f"{_replies(self.merged)} of the same chats answered with them")
        if self.expired:
            parts.append(f"{_replies(self.expired)} older than max_catch_up_age left failed")
        if self.cancelled:
            parts.append(f"{_replies(self.cancelled)} cancelled: the owner wrote since")
        return "; ".join(parts)

    def add(self, other: _Pass) -> _Pass:
        return _Pass(
            requeued=self.requeued + other.requeued,
            merged=self.merged + other.merged,
            expired=self.expired + other.expired,
            cancelled=self.cancelled + other.cancelled,
            fresh=self.fresh + other.fresh,
        )


def _replies(count: int) -> str:
    return f"{count} repl{'y' if count == 1 else 'ies'}"
