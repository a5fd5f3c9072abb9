"""The owner's reply timing, learned from their history: how long they take to answer (by hour
of the week and per contact) and how fast they type. `twin style build` measures it with the
style (`TimingAccumulator` lives inside `StyleAccumulator`); `[humanize] learned = true` draws
the read delay from it (`draw_latency`, called by twin.domain.policies.delays.read_delay).

Definitions (what is measured, in private chats only):

* **Reply latency.** For each message of the owner that follows one or more messages of the
  contact, latency = the owner's message time − the time of the first of those contact messages
  (the first one still unanswered). The owner's following messages (no contact message between)
  are not replies and are not measured. Latencies over `LATENCY_CAP_S` (12 h) are not replies
  either (the owner came back to the chat later): they are only counted (`over_cap`). A sample is
  filed under the hour of the week of the contact's message, in the owner's time zone (the
  `[schedule] timezone` at build time), and under the contact.
* **Typing speed.** Two consecutive messages of the owner less than `TYPING_GAP_MAX_S` apart
  (and at least 1 s, Telegram dates have whole seconds): the second message's characters / the
  gap. The median of those is the learned characters per second.

Bounded and mergeable: each hour of the week (168 buckets), each contact and the typing speeds
keep an exact count and a *bottom-k sample*: the k samples whose priority (the first 32 bits of
SHA-256 of "chat:message id") is smallest. That is a uniform sample without replacement,
independent of the order messages are read in, and merging two accumulators (union, keep the k
smallest) is exactly the sample of the union; a message read twice keeps one entry.

Drawing (`draw_latency`), first that has at least `MIN_SAMPLES` (20) measured replies:
the contact's own sample; the hour of the week of `at`; the same hour on any day of the week;
any time. A coarser level is a mixture of the buckets in it, each weighted by its real count
(a bucket keeps at most `BUCKET_SAMPLE` values but may have measured more). Nothing with
enough replies: `draw_latency` returns None and the configured log-normal is used.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from twin.domain.conversation import ChatId

__all__ = [
    "HistoryMessage",
    "LearnedTiming",
    "Level",
    "ReplyScan",
    "TimingAccumulator",
    "draw_latency",
    "human_seconds",
]

LATENCY_CAP_S = 12 * 3600
MIN_SAMPLES = 20
BUCKET_SAMPLE = 64
CONTACT_SAMPLE = 48
TYPING_SAMPLE = 256
TYPING_GAP_MAX_S = 120
TYPING_MIN_CHARS = 2
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS_OF_WEEK = 7 * 24


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """One message of a private chat as the scan sees it (no text: only its length)."""

    id: int
    at: datetime
    out: bool  # written by the owner
    chars: int = 0
    twin: bool = False  # sent by the twin itself: an answer, but not the owner's timing


def priority(chat_id: ChatId, message_id: int) -> int:
    digest = hashlib.sha256(f"{chat_id}:{message_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def hour_of_week(moment: datetime, tz: ZoneInfo) -> int:
    """0 = Monday 00:00-00:59 … 167 = Sunday 23h, on the wall clock of `tz`."""
    local = moment.astimezone(tz)
    return local.weekday() * 24 + local.hour


def human_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# -- the bounded sample ---------------------------------------------------------------------


class BottomK:
    """An exact count and the `k` values with the smallest priorities."""

    __slots__ = ("count", "items", "k")

    def __init__(self, k: int) -> None:
        self.k = k
        self.count = 0
        self.items: dict[int, float] = {}

    def add(self, key: int, value: float) -> None:
        self.count += 1
        self._put(key, value)

    def _put(self, key: int, value: float) -> None:
        if len(self.items) >= self.k and key not in self.items and key > max(self.items):
            return
        self.items[key] = value
        if len(self.items) > self.k:
            del self.items[max(self.items)]

    def merge(self, other: BottomK) -> None:
        self.count += other.count
        for key, value in other.items.items():
            self._put(key, value)

    def values(self) -> tuple[float, ...]:
        return tuple(sorted(self.items.values()))

    def to_list(self) -> list[Any]:
        return [self.count, [[key, value] for key, value in sorted(self.items.items())]]

    @classmethod
    def from_list(cls, k: int, data: Sequence[Any]) -> BottomK:
        sample = cls(k)
        sample.count = int(data[0])
        for key, value in data[1]:
            sample._put(int(key), float(value))
        return sample


# -- what a decision draws from -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Level:
    """A distribution to draw latencies from: `parts` are (measured count, kept values) of the
    buckets it mixes; `label` says which ("Tue 14h", "14h on any day", "any time", …)."""

    label: str
    samples: int
    median_s: float
    parts: tuple[tuple[int, tuple[float, ...]], ...]

    @classmethod
    def of(cls, label: str, parts: Iterable[tuple[int, tuple[float, ...]]]) -> Level:
        kept = tuple((count, values) for count, values in parts if count and values)
        return cls(label, sum(c for c, _ in kept), _weighted_median(kept), kept)

    def draw(self, rng: random.Random) -> float:
        values = self.parts[-1][1]
        if len(self.parts) > 1:  # a mixture: a bucket by its measured count, then a value
            point = rng.random() * self.samples
            for count, kept in self.parts:
                point -= count
                if point < 0:
                    values = kept
                    break
        return values[rng.randrange(len(values))]

    def quantile(self, q: float) -> float:
        return _weighted_quantile(self.parts, q)


def _weighted_quantile(parts: Sequence[tuple[int, tuple[float, ...]]], q: float) -> float:
    weighted = sorted((value, count / len(values)) for count, values in parts for value in values)
    if not weighted:
        return 0.0
    target, seen = q * sum(w for _, w in weighted), 0.0
    for value, weight in weighted:
        seen += weight
        if seen >= target - 1e-9:
            return value
    return weighted[-1][0]  # pragma: no cover - rounding only


def _weighted_median(parts: Sequence[tuple[int, tuple[float, ...]]]) -> float:
    return _weighted_quantile(parts, 0.5)


@dataclass(frozen=True, slots=True)
class LearnedTiming:
    """The learned distributions, resolved once per stored profile: for each hour of the week
    the level a draw uses (None: too few replies anywhere), the contacts with enough replies."""

    timezone: str
    samples: int  # measured reply latencies
    over_cap: int  # gaps longer than the cap, not counted as replies
    hours: tuple[Level | None, ...]  # HOURS_OF_WEEK entries, fallbacks resolved
    contacts: dict[ChatId, Level] = field(default_factory=dict)
    overall: Level | None = None
    typing_cps: float | None = None  # None: fewer than MIN_SAMPLES measurable pairs
    typing_samples: int = 0
    measured: tuple[int, ...] = ()  # replies measured per hour of the week (its own bucket)
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.hours) != HOURS_OF_WEEK:
            raise ValueError(f"LearnedTiming.hours needs {HOURS_OF_WEEK} entries")
        object.__setattr__(self, "tz", ZoneInfo(self.timezone))

    def level(self, at: datetime, chat_id: ChatId | None = None) -> Level | None:
        if chat_id is not None and chat_id in self.contacts:
            return self.contacts[chat_id]
        return self.hours[hour_of_week(at, self.tz)]

    def describe(self) -> str:
        """One line for the CLI and GET /style."""
        if self.overall is None:
            timing = f"too few replies measured ({self.samples}, need {MIN_SAMPLES})"
        else:
            timing = (
                f"{self.samples} replies measured, median {human_seconds(self.overall.median_s)}"
                f" (90% within {human_seconds(self.overall.quantile(0.9))})"
            )
        if self.contacts:
            timing += f", {len(self.contacts)} contact(s) with their own timing"
        typing = (
            f"typing {self.typing_cps:.1f} chars/s ({self.typing_samples} measured)"
            if self.typing_cps is not None
            else "typing speed not measurable"
        )
        return f"Reply timing ({self.timezone}): {timing}; {typing}."


def draw_latency(
    timing: LearnedTiming, rng: random.Random, *, at: datetime, chat_id: ChatId | None = None
) -> tuple[float, Level] | None:
    """A latency (seconds) drawn from the owner's replies to a message arriving at `at`
    (aware) in `chat_id`, and the level it came from; None when too few were measured."""
    level = timing.level(at, chat_id)
    if level is None:
        return None
    return level.draw(rng), level


# -- the accumulator ------------------------------------------------------------------------


class TimingAccumulator:
    """Mergeable, serialisable, bounded counts of the owner's reply latencies and typing
    speeds (see the module docstring); part of `StyleAccumulator`."""

    def __init__(self, timezone: str = "UTC") -> None:
        ZoneInfo(timezone)  # an unknown zone fails here, not at the first draw
        self.timezone = timezone
        self.buckets: dict[int, BottomK] = {}
        self.contacts: dict[ChatId, BottomK] = {}
        self.typing = BottomK(TYPING_SAMPLE)
        self.over_cap = 0

    @property
    def samples(self) -> int:
        return sum(b.count for b in self.buckets.values())

    @property
    def empty(self) -> bool:
        return not self.buckets and not self.typing.count and not self.over_cap

    def add_latency(
        self, chat_id: ChatId, message_id: int, contact_at: datetime, seconds: float
    ) -> None:
        """One reply: the owner's message `message_id` answered the contact's message of
        `contact_at` after `seconds`."""
        if seconds < 0:
            return
        if seconds > LATENCY_CAP_S:
            self.over_cap += 1
            return
        key = priority(chat_id, message_id)
        bucket = hour_of_week(contact_at, ZoneInfo(self.timezone))
        self.buckets.setdefault(bucket, BottomK(BUCKET_SAMPLE)).add(key, seconds)
        self.contacts.setdefault(chat_id, BottomK(CONTACT_SAMPLE)).add(key, seconds)

    def add_typing(self, chat_id: ChatId, message_id: int, cps: float) -> None:
        self.typing.add(priority(chat_id, message_id), cps)

    def merge(self, other: TimingAccumulator) -> TimingAccumulator:
        if other.empty:
            return self
        if self.empty:
            self.timezone = other.timezone
        elif other.timezone != self.timezone:
            raise ValueError(f"cannot merge reply timing of {other.timezone} into {self.timezone}")
        for mine, theirs, k in (
            (self.buckets, other.buckets, BUCKET_SAMPLE),
            (self.contacts, other.contacts, CONTACT_SAMPLE),
        ):
            for key, sample in theirs.items():
                mine.setdefault(key, BottomK(k)).merge(sample)
        self.typing.merge(other.typing)
        self.over_cap += other.over_cap
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "over_cap": self.over_cap,
            "buckets": [[key, *b.to_list()] for key, b in sorted(self.buckets.items())],
            # chat ids keep their int/str type
            "contacts": [
                [chat, *b.to_list()]
                for chat, b in sorted(self.contacts.items(), key=lambda kv: _chat_key(kv[0]))
            ],
            "typing": self.typing.to_list(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimingAccumulator:
        acc = cls(data["timezone"])
        acc.over_cap = int(data["over_cap"])
        for key, count, items in data["buckets"]:
            if not 0 <= int(key) < HOURS_OF_WEEK:
                raise ValueError(f"hour of the week out of range: {key!r}")
            acc.buckets[int(key)] = BottomK.from_list(BUCKET_SAMPLE, (count, items))
        for chat, count, items in data["contacts"]:
            acc.contacts[chat] = BottomK.from_list(CONTACT_SAMPLE, (count, items))
        acc.typing = BottomK.from_list(TYPING_SAMPLE, data["typing"])
        return acc

    def learned(self, *, min_samples: int = MIN_SAMPLES) -> LearnedTiming:
        """The distributions a decision draws from, fallbacks resolved (module docstring)."""
        min_samples = max(1, min_samples)
        parts = {key: (b.count, b.values()) for key, b in self.buckets.items()}
        overall = Level.of("any time", (parts[key] for key in sorted(parts)))
        by_hour: dict[int, Level] = {}
        for hour in range(24):
            keys = [day * 24 + hour for day in range(7) if day * 24 + hour in parts]
            by_hour[hour] = Level.of(f"{hour:02d}h on any day", (parts[k] for k in keys))
        hours: list[Level | None] = []
        for key in range(HOURS_OF_WEEK):
            count, values = parts.get(key, (0, ()))
            if count >= min_samples:
                hours.append(Level.of(f"{DAYS[key // 24]} {key % 24:02d}h", [(count, values)]))
            elif by_hour[key % 24].samples >= min_samples:
                hours.append(by_hour[key % 24])
            elif overall.samples >= min_samples:
                hours.append(overall)
            else:
                hours.append(None)
        contacts = {
            chat: Level.of("this contact", [(b.count, b.values())])
            for chat, b in self.contacts.items()
            if b.count >= min_samples
        }
        typing = self.typing
        cps = (
            _weighted_median([(typing.count, typing.values())])
            if typing.count >= min_samples
            else None
        )
        return LearnedTiming(
            timezone=self.timezone,
            samples=overall.samples,
            over_cap=self.over_cap,
            hours=tuple(hours),
            contacts=contacts,
            overall=overall if overall.samples >= min_samples else None,
            typing_cps=cps,
            typing_samples=typing.count,
            measured=tuple(parts.get(key, (0, ()))[0] for key in range(HOURS_OF_WEEK)),
        )


# -- reading a chat's history ---------------------------------------------------------------


@dataclass(slots=True)
class ReplyScan:
    """Measures one chat while its history is read newest first, page by page; the state
    between pages is a few fields (`to_dict` goes into the build's cursor)."""

    answer_id: int | None = None  # the owner's earliest message of the run being answered
    answer_at: datetime | None = None
    first_at: datetime | None = None  # the earliest contact message before that run
    newer_own: tuple[int, datetime, int] | None = None  # (id, at, chars), if just seen

    def feed(
        self, acc: TimingAccumulator, chat_id: ChatId, messages: Iterable[HistoryMessage]
    ) -> None:
        """`messages` newest first, continuing where the previous page stopped."""
        for message in messages:
            if message.twin:
                # The twin answered the contact messages before it: the owner's run above (if
                # any) closes, and the twin's own pace is never learned as the owner's.
                if self.first_at is not None:
                    self._reply(acc, chat_id)
                self.answer_id = self.answer_at = self.first_at = self.newer_own = None
                continue
            if message.out:
                self._typing(acc, chat_id, message)
                if self.first_at is not None:
                    self._reply(acc, chat_id)
                self.answer_id, self.answer_at, self.first_at = message.id, message.at, None
            else:
                self.newer_own = None
                if self.answer_at is not None:
                    self.first_at = message.at

    def finish(self, acc: TimingAccumulator, chat_id: ChatId) -> None:
        """The chat's history starts here: the last run of contact messages counts."""
        if self.first_at is not None:
            self._reply(acc, chat_id)
        self.answer_id = self.answer_at = self.first_at = self.newer_own = None

    def _reply(self, acc: TimingAccumulator, chat_id: ChatId) -> None:
        assert self.answer_at is not None and self.answer_id is not None
        assert self.first_at is not None
        seconds = (self.answer_at - self.first_at).total_seconds()
        acc.add_latency(chat_id, self.answer_id, self.first_at, seconds)

    def _typing(self, acc: TimingAccumulator, chat_id: ChatId, message: HistoryMessage) -> None:
        newer = self.newer_own
        self.newer_own = (message.id, message.at, message.chars)
        if newer is None:
            return
        newer_id, newer_at, chars = newer
        gap = (newer_at - message.at).total_seconds()
        if 1 <= gap <= TYPING_GAP_MAX_S and chars >= TYPING_MIN_CHARS:
            acc.add_typing(chat_id, newer_id, chars / gap)

    def to_dict(self) -> dict[str, Any]:
        newer = self.newer_own
        return {
            "answer_id": self.answer_id,
            "answer_at": _iso(self.answer_at),
            "first_at": _iso(self.first_at),
            "newer_own": None if newer is None else [newer[0], newer[1].isoformat(), newer[2]],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReplyScan:
        if not data:
            return cls()
        newer = data.get("newer_own")
        return cls(
            answer_id=data.get("answer_id"),
            answer_at=_parse(data.get("answer_at")),
            first_at=_parse(data.get("first_at")),
            newer_own=None
            if newer is None
            else (int(newer[0]), datetime.fromisoformat(newer[1]), int(newer[2])),
        )


def _chat_key(chat_id: ChatId) -> tuple[bool, int | str]:
    """Sorts int and str chat ids apart (a stable order for the stored state)."""
    return isinstance(chat_id, str), chat_id


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
