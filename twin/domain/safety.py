"""The safety governor's decisions for one Telegram account: how fast each kind of call may go,
how many messages a day the account sends, when a new conversation may be opened, and when
Telegram's own warnings (FLOOD_WAIT, PEER_FLOOD) mean the twin must stop sending by itself.

Pure: every method takes `now` (seconds on one monotonic-enough scale, Unix time in the daemon)
and nothing here sleeps or does I/O; the adapter waits what `admit` says, the service persists
what `record_*` returns.

- **Token buckets per call category** (`Bucket`: `per_hour` tokens refilled continuously, at
  most `burst` saved up). A call takes one token; with none left it *reserves* the next one and
  waits for it (GCRA-like: tokens may go below zero, so waiters queue in order), unless the wait
  would be longer than `max_wait` — then it is refused with `retry_after`, and the caller (the
  reply worker, the sweep) comes back later instead of holding a task for minutes.
- **A daily send budget**: at most `daily_sends` messages in any 24 h (a moving window, so no
  burst at midnight). Sends to the owner's own Saved Messages (the governor's notes, owner
  command acknowledgements) are neither throttled nor counted.
- **First contact**: opening a conversation with someone the account never exchanged messages
  with is allowed only when asked explicitly, and at most `first_contacts_daily` in 24 h.
- **Flood waits** are honoured in full: the category is blocked until the wait is over (no call
  of it reaches Telegram early). `flood_waits_per_hour` of them in an hour, or one spam-limit
  refusal (PEER_FLOOD), trips the governor: the account goes to `on_trip` mode (draft or off)
  until the owner turns it back on.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

HOUR = 3600.0
DAY = 86400.0


class CallCategory(StrEnum):
    SEND = "send"  # messages, media, forwards
    RESOLVE = "resolve"  # username / phone resolution
    DIALOGS = "dialogs"  # the dialog list
    HISTORY = "history"  # reading messages (history, search, by id)
    UPLOAD = "upload"  # file parts (voice notes)
    OTHER = "other"  # everything else: counted, never throttled


THROTTLED = (
    CallCategory.SEND,
    CallCategory.RESOLVE,
    CallCategory.DIALOGS,
    CallCategory.HISTORY,
    CallCategory.UPLOAD,
)


class AccountMode(StrEnum):
    """What the twin does on an account: answers (active), writes replies for the owner to
    send (draft), or nothing (off). Set by the owner, or by the governor when it trips."""

    ACTIVE = "active"
    DRAFT = "draft"
    OFF = "off"


# Telegram's refusals that say the account itself is limited for spam: no wait is given and
# retrying makes it worse.
SPAM_LIMITS = frozenset({"PEER_FLOOD", "USER_RESTRICTED", "FROZEN_METHOD_INVALID"})


@dataclass(frozen=True, slots=True)
class Bucket:
    per_hour: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_hour) and self.per_hour > 0):
            raise ValueError(f"a bucket's per_hour must be > 0, got {self.per_hour}")
        if self.burst < 1:
            raise ValueError(f"a bucket's burst must be >= 1, got {self.burst}")

    @property
    def interval(self) -> float:
        """Seconds per token."""
        return HOUR / self.per_hour


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    buckets: dict[CallCategory, Bucket] = field(
        default_factory=lambda: {
            CallCategory.SEND: Bucket(per_hour=300, burst=10),
            CallCategory.RESOLVE: Bucket(per_hour=8, burst=4),
            CallCategory.DIALOGS: Bucket(per_hour=120, burst=5),
            CallCategory.HISTORY: Bucket(per_hour=1200, burst=30),
            CallCategory.UPLOAD: Bucket(per_hour=600, burst=20),
        }
    )
    daily_sends: int = 500
    first_contacts_daily: int = 5
    flood_waits_per_hour: int = 3
    on_trip: AccountMode = AccountMode.DRAFT
    max_wait: float = 10.0  # longest a call waits for its turn; longer: refused, retry later

    def __post_init__(self) -> None:
        for name in ("daily_sends", "first_contacts_daily", "flood_waits_per_hour"):
            if getattr(self, name) < 0:
                raise ValueError(f"safety.{name}: must be >= 0")
        if self.on_trip is AccountMode.ACTIVE:
            raise ValueError("safety.on_trip: must be draft or off")
        if not self.max_wait >= 0:  # infinity: wait however long (a CLI command); NaN: no
            raise ValueError("safety.max_wait_seconds: must be >= 0")


@dataclass(frozen=True, slots=True)
class Admission:
    """A call's turn: go after `wait` seconds, or (refused) come back after `retry_after`."""

    allowed: bool
    wait: float = 0.0
    retry_after: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Trip:
    """The governor stops the twin sending by itself: the mode to switch to and why."""

    mode: AccountMode
    reason: str


class _TokenBucket:
    """One category's bucket: `tat` is the theoretical arrival time of the next token (GCRA)."""

    __slots__ = ("bucket", "tat")

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.tat = -math.inf

    def wait_for(self, now: float) -> float:
        """Seconds until a call made now may go (0: at once), without taking the token."""
        interval = self.bucket.interval
        tat = max(self.tat, now)
        return max(0.0, tat - (self.bucket.burst - 1) * interval - now)

    def take(self, now: float) -> None:
        self.tat = max(self.tat, now) + self.bucket.interval

    def available(self, now: float) -> float:
        """Tokens saved up now (may be fractional; negative while calls are queued)."""
        tat = max(self.tat, now)
        return self.bucket.burst - (tat - now) / self.bucket.interval


def _block_key(category: CallCategory, method: str) -> CallCategory | str:
    """What a FLOOD_WAIT blocks: a whole category (Telegram limits sends, resolutions… as a
    kind), or for an uncategorised call its own method only (as Telethon does)."""
    return f"other:{method}" if category is CallCategory.OTHER else category


def _trim(times: deque[float], since: float) -> deque[float]:
    while times and times[0] <= since:
        times.popleft()
    return times


def _count(times: deque[float], since: float) -> int:
    return sum(1 for t in times if t > since)


@dataclass
class _FloodWait:
    at: float
    seconds: float
    category: CallCategory


class SafetyLedger:
    """One account's calls, sends and Telegram's warnings, in memory: one process owns an
    account, and a restart begins with the sends of the last 24 h (`seed_sends`)."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self._buckets = {c: _TokenBucket(b) for c, b in limits.buckets.items()}
        self._calls: dict[CallCategory, deque[float]] = {c: deque() for c in CallCategory}
        self._sends: deque[float] = deque()
        self._first_contacts: deque[float] = deque()
        self._flood_waits: deque[_FloodWait] = deque()
        self._spam_limits: deque[float] = deque()
        self._blocked_until: dict[CallCategory | str, float] = {}

    # -- calls ------------------------------------------------------------------------------

    def seed_sends(self, times: list[float]) -> None:
        """The account's sends of the last 24 h, from storage, when the process starts."""
        self._sends = deque(sorted(t for t in times))

    def admit(
        self, category: CallCategory, now: float, *, to_self: bool = False, method: str = ""
    ) -> Admission:
        """A call's turn. Allowed calls are counted (and take their token) here: the caller
        waits `wait` seconds, then makes it."""
        # A FLOOD_WAIT is sat out in full when it is short enough, else the call comes back
        # after it: no call of a category Telegram asked to wait reaches it early.
        blocked = self.blocked_for(category, now, method)
        if blocked > self.limits.max_wait:
            return self._refuse(blocked, f"Telegram asked to wait (FLOOD_WAIT) {blocked:.0f} s")
        if to_self:
            # The owner's Saved Messages (the governor's notes, acknowledgements): neither
            # throttled nor counted against the budget.
            self._calls[category].append(now)
            return Admission(True, wait=blocked)
        if category is CallCategory.SEND and self.limits.daily_sends:
            sends = _trim(self._sends, now - DAY)
            if len(sends) >= self.limits.daily_sends:
                return self._refuse(
                    sends[0] + DAY - now,
                    f"daily send budget reached ({len(sends)} of {self.limits.daily_sends} "
                    "in 24 h)",
                )
        wait = blocked
        bucket = self._buckets.get(category)
        if bucket is not None:
            wait = max(blocked, bucket.wait_for(now))
            if wait > self.limits.max_wait:
                return self._refuse(
                    wait,
                    f"{category} calls over {bucket.bucket.per_hour:g}/h "
                    f"(burst {bucket.bucket.burst})",
                )
            bucket.take(now + blocked)
        calls = _trim(self._calls[category], now - DAY)
        calls.append(now)  # counted when admitted (times stay in order)
        if category is CallCategory.SEND:
            self._sends.append(now)
        return Admission(True, wait=wait)

    @staticmethod
    def _refuse(retry_after: float, reason: str) -> Admission:
        return Admission(False, retry_after=max(retry_after, 1.0), reason=reason)

    def admit_first_contact(self, now: float) -> Admission:
        """A message to someone the account never talked to, asked for explicitly."""
        contacts = _trim(self._first_contacts, now - DAY)
        limit = self.limits.first_contacts_daily
        if len(contacts) >= limit:
            retry = contacts[0] + DAY - now if contacts else DAY
            return self._refuse(
                retry, f"first-contact budget reached ({len(contacts)} of {limit} in 24 h)"
            )
        contacts.append(now)
        return Admission(True)

    # -- Telegram's warnings ----------------------------------------------------------------

    def record_flood_wait(
        self, category: CallCategory, seconds: float, now: float, method: str = ""
    ) -> Trip | None:
        """Telegram answered FLOOD_WAIT_<seconds>: nothing of this category (of an
        uncategorised call: of this method) goes before the wait is over; the Kth in an hour
        trips the governor."""
        seconds = max(float(seconds), 1.0)
        key = _block_key(category, method)
        self._blocked_until[key] = max(self._blocked_until.get(key, -math.inf), now + seconds)
        waits = self._flood_waits
        while waits and waits[0].at <= now - DAY:
            waits.popleft()
        waits.append(_FloodWait(now, seconds, category))
        recent = sum(1 for w in waits if w.at > now - HOUR)
        limit = self.limits.flood_waits_per_hour
        if limit and recent >= limit:
            return Trip(
                self.limits.on_trip,
                f"{recent} flood waits from Telegram in the last hour (limit {limit}); the "
                f"latest asked {category} calls to wait {seconds:.0f} s",
            )
        return None

    def forgive(self) -> None:
        """The owner turned the twin back on: past warnings no longer count towards a trip
        (a wait Telegram asked for still holds)."""
        self._flood_waits.clear()
        self._spam_limits.clear()

    def record_spam_limit(self, error: str, now: float) -> Trip:
        """Telegram says the account is limited for spam (PEER_FLOOD…): stop at once."""
        _trim(self._spam_limits, now - DAY).append(now)
        return Trip(
            self.limits.on_trip,
            f"Telegram refused a message with {error}: the account is limited for spam",
        )

    def blocked_for(self, category: CallCategory, now: float, method: str = "") -> float:
        """Seconds Telegram still asks this category (an uncategorised method) to wait."""
        until = self._blocked_until.get(_block_key(category, method), -math.inf)
        return max(0.0, until - now)

    # -- the owner's view -------------------------------------------------------------------

    def snapshot(self, now: float) -> SafetySnapshot:
        calls = {}
        for category in CallCategory:
            times = _trim(self._calls[category], now - DAY)
            bucket = self._buckets.get(category)
            calls[category] = CategoryUse(
                last_hour=_count(times, now - HOUR),
                last_day=len(times),
                per_hour=bucket.bucket.per_hour if bucket else None,
                burst=bucket.bucket.burst if bucket else None,
                available=round(max(bucket.available(now), 0.0), 2) if bucket else None,
                blocked_for=round(self.blocked_for(category, now), 1),
            )
        waits = [w for w in self._flood_waits if w.at > now - DAY]
        return SafetySnapshot(
            calls=calls,
            sends_last_day=len(_trim(self._sends, now - DAY)),
            daily_sends=self.limits.daily_sends,
            first_contacts_last_day=len(_trim(self._first_contacts, now - DAY)),
            first_contacts_daily=self.limits.first_contacts_daily,
            flood_waits_last_hour=sum(1 for w in waits if w.at > now - HOUR),
            flood_waits_last_day=len(waits),
            flood_wait_seconds_last_day=sum(w.seconds for w in waits),
            spam_limits_last_day=len(_trim(self._spam_limits, now - DAY)),
        )


@dataclass(frozen=True, slots=True)
class CategoryUse:
    last_hour: int
    last_day: int
    per_hour: float | None
    burst: int | None
    available: float | None
    blocked_for: float


@dataclass(frozen=True, slots=True)
class SafetySnapshot:
    calls: dict[CallCategory, CategoryUse]
    sends_last_day: int
    daily_sends: int
    first_contacts_last_day: int
    first_contacts_daily: int
    flood_waits_last_hour: int
    flood_waits_last_day: int
    flood_wait_seconds_last_day: float
    spam_limits_last_day: int
