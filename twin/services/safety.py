"""The safety governor of every Telegram account this process runs (decisions in
twin.domain.safety): one `AccountGuard` per account around its Telegram calls, each account's
mode (active, draft, off) with who set it and why, and the owner's view of it
(`GET /accounts/{name}/safety`).

What is stored: the mode (a change and its event in one transaction, before the note to the
owner, which carries a persisted random id so it is never sent twice) and the rare events the
governor acts on — flood waits, spam limits, first contacts. Calls are counted in memory by the
process that owns the account; at start its ledger is seeded with the account's sends and
events of the last 24 h, so a restart does not reset the daily budget or the flood-wait count.
With several processes on one database (twin.db.cluster) the same holds when an account moves:
the process that begins serving it (`adopt`) seeds its ledger again and reads its mode again,
so what the previous owner sent, waited and was told counts (only the per-category token
buckets, seconds to minutes deep, start full).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from twin.config import Settings
from twin.config_safety import SafetySettings
from twin.db.records_safety import AccountModeRecord
from twin.domain.safety import (
    DAY,
    AccountMode,
    Bucket,
    CallCategory,
    SafetyLedger,
    SafetyLimits,
    Trip,
)
from twin.errors import RateLimited, StorageUnavailable, TwinError
from twin.ports import Accounts, Clock
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.outbox import new_random_id

log = logging.getLogger("twin.safety")

GOVERNOR = "governor"
OWNER = "owner"
RESEED_SECONDS = 10.0  # a ledger whose seeding failed tries again this often at most
NOTE_ATTEMPTS = 4  # a note to the owner waits out a rate limit this many times at most
NOTE_MAX_WAIT = 900.0  # seconds, each


def limits_of(safety: SafetySettings, *, patient: bool = False) -> SafetyLimits:
    """`patient`: the call waits for its turn however long (a CLI command reading history)."""
    return SafetyLimits(
        buckets={
            CallCategory.SEND: Bucket(safety.sends_per_hour, safety.sends_burst),
            CallCategory.RESOLVE: Bucket(safety.resolves_per_hour, safety.resolves_burst),
            CallCategory.DIALOGS: Bucket(safety.dialogs_per_hour, safety.dialogs_burst),
            CallCategory.HISTORY: Bucket(safety.history_per_hour, safety.history_burst),
            CallCategory.UPLOAD: Bucket(safety.uploads_per_hour, safety.uploads_burst),
        },
        daily_sends=safety.daily_sends,
        first_contacts_daily=safety.first_contacts_daily,
        flood_waits_per_hour=safety.flood_waits_per_hour,
        on_trip=AccountMode(safety.on_trip),
        max_wait=math.inf if patient else safety.max_wait_seconds,
    )


class AccountGuard:
    """One account's governor around its Telegram calls (twin.ports.CallGuard)."""

    def __init__(self, safety: Safety, name: str) -> None:
        self._safety = safety
        self.name = name

    async def admit(
        self, category: CallCategory, *, to_self: bool = False, method: str = ""
    ) -> None:
        ledger = await self._safety.ledger_of(self.name)
        admission = ledger.admit(category, self._safety.now(), to_self=to_self, method=method)
        if not admission.allowed:
            self._safety.metric("refused", self.name, category)
            raise RateLimited(f"safety: {admission.reason}", retry_after=admission.retry_after)
        self._safety.metric("call", self.name, category)
        if admission.wait > 0:
            self._safety.metric("waited", self.name, category)
            await asyncio.sleep(admission.wait)

    async def flood_wait(self, category: CallCategory, seconds: float, method: str = "") -> bool:
        safety = self._safety
        ledger = await safety.ledger_of(self.name)
        trip = ledger.record_flood_wait(category, seconds, safety.now(), method)
        safety.metric("flood_wait", self.name, category, seconds)
        log.warning(
            "account %s: Telegram asked %s calls to wait %.0f s (FLOOD_WAIT on %s)",
            self.name,
            category,
            seconds,
            method or "?",
        )
        await safety.record(
            self.name, "flood_wait", category=category.value, seconds=seconds, detail=method
        )
        if trip is not None:
            await safety.trip(self.name, trip)
        return seconds <= safety.short_wait

    async def spam_limited(self, category: CallCategory, error: str) -> None:
        safety = self._safety
        ledger = await safety.ledger_of(self.name)
        trip = ledger.record_spam_limit(error, safety.now())
        safety.metric("spam_limit", self.name, category)
        log.warning("account %s: Telegram refused %s calls with %s", self.name, category, error)
        await safety.record(self.name, "spam_limit", category=category.value, detail=error)
        await safety.trip(self.name, trip)


class Safety:
    def __init__(
        self,
        settings: Settings,
        repo: Any,
        directory: AccountDirectory,
        clock: Clock,
        *,
        events: EventLog | None = None,
        patient: bool = False,
    ) -> None:
        self.limits = limits_of(settings.safety, patient=patient)
        self.short_wait = float(settings.telegram.flood_sleep_threshold)
        self._repo = repo
        self._directory = directory
        self._clock = clock
        self.events = events
        self.accounts: Accounts | None = None  # set by TelegramAccounts (the notes go by it)
        self._modes: dict[int, AccountModeRecord] = {}
        self._modes_loaded = False
        self._ledgers: dict[str, SafetyLedger] = {}
        self._ids: dict[str, int] = {}
        self._seeding: dict[str, asyncio.Lock] = {}
        self._unseeded: dict[str, float] = {}  # ledgers counting from empty: when last tried
        self._created: dict[str, float] = {}  # when each ledger began
        self._notes: set[asyncio.Task[None]] = set()
        self._trip_locks: dict[int, asyncio.Lock] = {}
        self._loading: asyncio.Task[None] | None = None
        # lifecycle: twin.services.safety_metrics.SafetyMetrics, in the API's registry
        self.metrics: Callable[[str, str, str, float], None] | None = None

    def now(self) -> float:
        return self._clock.now().timestamp()

    def ledgers(self) -> dict[str, SafetyLedger]:
        return dict(self._ledgers)

    def account_id(self, name: str) -> int | None:
        return self._ids.get(name)

    def guard(self, name: str) -> AccountGuard:
        return AccountGuard(self, name)

    def metric(self, kind: str, account: str, category: CallCategory, seconds: float = 0.0) -> None:
        if self.metrics is not None:
            self.metrics(kind, account, category.value, seconds)

    # -- the ledger of each account -------------------------------------------------------------

    async def ledger_of(self, name: str) -> SafetyLedger:
        """The account's ledger, seeded from storage on first use (the sends and events of the
        last 24 h); with the database out, it starts empty rather than stopping Telegram."""
        ledger = self._ledgers.get(name)
        if ledger is not None and name not in self._unseeded:
            return ledger
        lock = self._seeding.setdefault(name, asyncio.Lock())
        async with lock:
            ledger = self._ledgers.get(name)
            if ledger is not None and (
                name not in self._unseeded or self.now() < self._unseeded[name] + RESEED_SECONDS
            ):
                return ledger
            if ledger is None:
                ledger = self._ledgers[name] = SafetyLedger(self.limits)
                self._created[name] = self.now()
            try:
                await self._seed(name, ledger)
                self._unseeded.pop(name, None)
            except (StorageUnavailable, OSError, TwinError) as exc:
                # Counted from empty meanwhile; seeded again at most every RESEED_SECONDS.
                log.warning("account %s: safety ledger not seeded yet: %s", name, exc)
                self._unseeded[name] = self.now()
            return ledger

    async def _seed(self, name: str, ledger: SafetyLedger) -> None:
        """The sends and events of the last 24 h from storage. Seeded again after a failure:
        the sends replace what was counted (every send is stored before it is made), events
        recorded since the ledger began are in it already."""
        account_id = self._ids[name] = await self._directory.id_of(name)
        since = self._clock.now() - timedelta(seconds=DAY)
        sends = await self._repo.send_times(account_id, since)
        events = await self._repo.safety_events(account_id, since)
        ledger.seed_sends([t.timestamp() for t in sends])
        # Seeded again after a failure: what this ledger counted itself is not added twice.
        began = self._created[name] if name in self._unseeded else math.inf
        for event in events:
            at = event.at.timestamp()
            if at >= began:
                continue
            if event.kind == "flood_wait" and event.category:
                category = CallCategory(event.category)
                ledger.record_flood_wait(category, event.seconds or 1.0, at, event.detail)
            elif event.kind == "spam_limit":
                ledger.record_spam_limit(event.detail, at)
            elif event.kind == "first_contact":
                ledger.admit_first_contact(at)

    async def adopt(self, name: str, account_id: int) -> None:
        """This process begins serving the account (another may have served it meanwhile):
        its ledger is seeded again on next use and its mode read again from storage."""
        async with self._seeding.setdefault(name, asyncio.Lock()):
            self._ledgers.pop(name, None)
            self._unseeded.pop(name, None)
            self._created.pop(name, None)
        try:
            record = await self._repo.account_mode(account_id)
        except Exception as exc:  # the claim stands; the mode known here stays
            log.warning("account %s: mode not read again: %s", name, exc)
            return
        if record is None:
            self._modes.pop(account_id, None)
        else:
            self._modes[account_id] = record

    async def record(self, name: str, kind: str, **values: Any) -> None:
        """Store one of the governor's events; a database outage loses only the record (the
        ledger in memory has it, and Telegram's answer is not masked by it)."""
        try:
            account_id = await self._directory.id_of(name)
            await self._repo.add_safety_event(account_id, kind, at=self._clock.now(), **values)
        except (StorageUnavailable, OSError, TwinError) as exc:
            log.warning("account %s: safety event %s not stored: %s", name, kind, exc)

    # -- modes -----------------------------------------------------------------------------------

    async def load(self) -> None:
        """Every account's stored mode, and the governor's notes a crash kept from the owner
        (sent now with their stored random id: never twice)."""
        self._modes = await self._repo.account_modes()
        self._modes_loaded = True
        for record in self._modes.values():
            if record.notify_random_id is not None and not record.notified:
                with contextlib.suppress(TwinError):
                    self._note(await self._directory.name_of(record.account_id), record)

    async def start(self) -> None:
        """`load`, or (the database is out) keep trying in the background until it works."""
        try:
            await self.load()
        except (StorageUnavailable, OSError) as exc:
            log.warning("account modes unknown (%s): loading them in the background", exc)
            self._loading = asyncio.get_running_loop().create_task(self._load_until_done())

    async def _load_until_done(self) -> None:
        delay = 1.0
        while not self._modes_loaded:
            await asyncio.sleep(delay)
            try:
                await self.load()
            except (StorageUnavailable, OSError):
                delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        """Shutdown: a note still waiting out a rate limit is not waited for — unsent, it is
        sent at the next start (its row says so)."""
        for task in [self._loading, *self._notes]:
            if task is not None:
                task.cancel()
        for task in [self._loading, *self._notes]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def mode(self, account_id: int) -> AccountModeRecord | None:
        """The account's mode as last stored or set here (None: active, never changed)."""
        return self._modes.get(account_id)

    def mode_of(self, account_id: int) -> AccountMode:
        record = self._modes.get(account_id)
        return record.mode if record is not None else AccountMode.ACTIVE

    async def set_mode(
        self,
        name: str,
        mode: AccountMode,
        *,
        reason: str,
        set_by: str = OWNER,
        notify: bool = False,
    ) -> AccountModeRecord:
        """Store the account's mode, then (`notify`) tell the owner in Saved Messages."""
        account_id = await self._directory.id_of(name)
        record = await self._repo.set_account_mode(
            account_id,
            mode,
            reason=reason,
            set_by=set_by,
            at=self._clock.now(),
            notify_random_id=new_random_id() if notify else None,
        )
        self._modes[account_id] = record
        ledger = self._ledgers.get(name)
        if mode is AccountMode.ACTIVE and ledger is not None:
            ledger.forgive()  # the owner turned it back on: the count starts again
        if self.events is not None:
            await self.events.emit(
                "account.mode",
                {"account": name, "mode": mode.value, "reason": reason, "by": set_by},
                account_id=account_id,
            )
        log.warning("account %s: the twin is now %s (%s: %s)", name, mode, set_by, reason)
        if notify:
            self._note(name, record)
        return record

    async def trip(self, name: str, trip: Trip) -> None:
        """The governor stops the twin sending by itself, unless it already is (as much): one
        trip at a time per account, against the stored mode (another process — a CLI command —
        or the owner may have changed it)."""
        account_id = await self._directory.id_of(name)
        async with self._trip_locks.setdefault(account_id, asyncio.Lock()):
            try:
                stored = await self._repo.account_mode(account_id)
                if stored is not None:
                    self._modes[account_id] = stored
            except (StorageUnavailable, OSError) as exc:
                log.warning("account %s: stored mode unknown: %s", name, exc)
            current = self.mode_of(account_id)
            if current is AccountMode.OFF or current is trip.mode:
                return
            try:
                await self.set_mode(
                    name, trip.mode, reason=trip.reason, set_by=GOVERNOR, notify=True
                )
            except (StorageUnavailable, OSError) as exc:
                # Not stored: it holds in this process until a restart.
                log.error("account %s: the governor's %s not stored: %s", name, trip.mode, exc)
                self._modes[account_id] = AccountModeRecord(
                    account_id, trip.mode, trip.reason, GOVERNOR, self._clock.now(), None, False
                )

    def _note(self, name: str, record: AccountModeRecord) -> None:
        """The note to the owner goes in the background: it is a Telegram call itself, and the
        call that tripped the governor is still in progress."""
        task = asyncio.get_running_loop().create_task(self._send_note(name, record))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _send_note(self, name: str, record: AccountModeRecord) -> None:
        if self.accounts is None or record.notify_random_id is None:
            return
        what = {
            AccountMode.DRAFT: "writes drafts for you and sends nothing by itself",
            AccountMode.OFF: "is off",
        }.get(record.mode, "answers again")
        text = (
            f"twin: to protect your account, the twin {what} on '{name}'.\n"
            f"Why: {record.reason}.\n"
            'Turn it back on when you are ready: PUT /accounts/{name}/safety {"mode": "active"} '
            "(or type .twin on in any chat)."
        ).replace("{name}", name)
        for _ in range(NOTE_ATTEMPTS):
            try:
                account = await self.accounts.get(name, connect=False)
                await account.send_text("me", text, random_id=record.notify_random_id)
                await self._repo.mark_mode_notified(record.account_id, record.notify_random_id)
                return
            except RateLimited as exc:  # Telegram's own wait, or the governor's: sit it out
                await asyncio.sleep(min(exc.retry_after or 5.0, NOTE_MAX_WAIT))
            except Exception as exc:  # the mode holds whether or not the note went out
                log.warning("account %s: the governor's note was not sent: %s", name, exc)
                return
        log.warning("account %s: the governor's note was not sent (rate limited)", name)

    async def drain(self) -> None:
        """Wait for the notes in flight (shutdown, tests)."""
        while self._notes:
            await asyncio.gather(*list(self._notes), return_exceptions=True)

    # -- first contact ---------------------------------------------------------------------------

    async def first_contact(self, name: str) -> None:
        """A message to someone the account never exchanged messages with, asked explicitly:
        counted against its own small budget (RateLimited beyond it)."""
        ledger = await self.ledger_of(name)
        admission = ledger.admit_first_contact(self.now())
        if not admission.allowed:
            raise RateLimited(f"safety: {admission.reason}", retry_after=admission.retry_after)
        await self.record(name, "first_contact", detail="POST /send_message")

    # -- the owner's view ------------------------------------------------------------------------

    async def report(self, name: str) -> dict[str, Any]:
        account_id = await self._directory.id_of(name)
        if not self._modes_loaded:
            await self.load()
        ledger = await self.ledger_of(name)
        snapshot = ledger.snapshot(self.now())
        record = self.mode(account_id)
        limits = self.limits
        return {
            "account": name,
            "mode": (record.mode if record else AccountMode.ACTIVE).value,
            "reason": record.reason if record else "",
            "set_by": record.set_by if record else None,
            "changed_at": record.changed_at.isoformat() if record else None,
            "calls": {category.value: asdict(use) for category, use in snapshot.calls.items()},
            "sends": {"last_24h": snapshot.sends_last_day, "budget": snapshot.daily_sends},
            "first_contacts": {
                "last_24h": snapshot.first_contacts_last_day,
                "budget": snapshot.first_contacts_daily,
            },
            "flood_waits": {
                "last_hour": snapshot.flood_waits_last_hour,
                "last_24h": snapshot.flood_waits_last_day,
                "seconds_24h": round(snapshot.flood_wait_seconds_last_day, 1),
                "trip_after": limits.flood_waits_per_hour,
            },
            "spam_limits": {"last_24h": snapshot.spam_limits_last_day},
            "on_trip": limits.on_trip.value,
        }
