"""Activity statistics of an account per UTC day (`GET /stats`), identical on both backends.

Every figure is counted on the UTC day its event happened:

- received: incoming messages, by their Telegram `date`.
- replied / skipped / failed / cancelled: replies that reached that state, by `finished_at`
  (a reply that never got one, e.g. created directly as skipped, by `created_at`); plus incoming
  messages in that state that are *not* linked to a reply in the same state (decisions taken
  per message without a reply job, e.g. "outside_hours"), by message date. The pipeline copies a
  reply's outcome onto its messages; this rule counts such an outcome once, as the reply.
  `skipped` is grouped by reason (`"unknown"` when none was recorded).
- escalated: replies with reason "escalated" (whatever their state), plus incoming messages
  with that reason not linked to such a reply. Escalations are skips, so they also appear in
  `skipped["escalated"]`.
- deferred: replies whose decision action was "defer", by `created_at` (when it was decided).
- time to reply: for replies sent that day (`finished_at`), `finished_at` minus the date of
  the earliest incoming message linked to the reply (never below 0); replies with no linked
  incoming message have no time to reply. Median and p95 use linear interpolation between
  closest ranks (numpy's default, PostgreSQL's percentile_cont), computed here in Python.
- tokens and cost: the sum over replies (LLM usage; by `finished_at`, else `created_at`) and
  over messages of either direction (e.g. speech-to-text of voice notes; by `date`). Costs are
  rounded to 1e-8 USD so both backends agree to the last digit.

Queries are bounded by the date range and group in SQL; only the per-reply durations of sent
replies are fetched row by row.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.repo._base import RepoBase
from twin.db.tables import Message, Reply

R = Reply.__table__
M = Message.__table__

COST_DIGITS = 8
MAX_DAYS = 366
UNKNOWN_REASON = "unknown"
_OUTCOMES = ("skipped", "failed", "cancelled")  # terminal states other than sent
_ESCALATED = "escalated"


@dataclass(frozen=True, slots=True)
class DayStats:
    """The figures of one UTC day, or of the whole range (`day` is None then)."""

    day: date | None
    received: int = 0
    replied: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    escalated: int = 0
    failed: int = 0
    cancelled: int = 0
    replies_timed: int = 0  # sent replies with a measurable time to reply
    median_reply_seconds: float | None = None
    p95_reply_seconds: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass(frozen=True, slots=True)
class StatsReport:
    account_id: int
    start: date
    end: date  # inclusive
    days: list[DayStats]
    totals: DayStats


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of sorted values by linear interpolation; None when empty."""
    if not ordered:
        return None
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


class _Tally:
    """Mutable accumulator of one day (or of the totals)."""

    __slots__ = (
        "cancelled",
        "completion_tokens",
        "costs",
        "deferred",
        "durations",
        "escalated",
        "failed",
        "prompt_tokens",
        "received",
        "replied",
        "skipped",
    )

    def __init__(self) -> None:
        self.received = self.replied = self.deferred = self.escalated = 0
        self.failed = self.cancelled = self.prompt_tokens = self.completion_tokens = 0
        self.skipped: Counter[str] = Counter()
        self.costs: list[float] = []
        self.durations: list[float] = []

    def outcome(self, state: str | None, reason: str | None, count: int) -> None:
        if state == "skipped":
            self.skipped[reason or UNKNOWN_REASON] += count
        elif state == "failed":
            self.failed += count
        elif state == "cancelled":
            self.cancelled += count

    def usage(self, prompt: Any, completion: Any, cost: Any) -> None:
        self.prompt_tokens += int(prompt or 0)
        self.completion_tokens += int(completion or 0)
        if cost is not None:
            self.costs.append(float(cost))

    def merge(self, other: _Tally) -> None:
        for name in (
            "received",
            "replied",
            "deferred",
            "escalated",
            "failed",
            "cancelled",
            "prompt_tokens",
            "completion_tokens",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.costs.extend(other.costs)
        self.durations.extend(other.durations)

    def freeze(self, day: date | None) -> DayStats:
        ordered = sorted(self.durations)
        return DayStats(
            day=day,
            received=self.received,
            replied=self.replied,
            skipped=dict(sorted(self.skipped.items())),
            deferred=self.deferred,
            escalated=self.escalated,
            failed=self.failed,
            cancelled=self.cancelled,
            replies_timed=len(ordered),
            median_reply_seconds=_seconds(percentile(ordered, 0.5)),
            p95_reply_seconds=_seconds(percentile(ordered, 0.95)),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=round(math.fsum(self.costs), COST_DIGITS) + 0.0,  # no -0.0
        )


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class StatsMixin(RepoBase):
    async def activity_stats(self, account_id: int, start: date, end: date) -> StatsReport:
        """Per-day and total figures of an account for the UTC days start..end (inclusive);
        see the module docstring for the definitions. At most MAX_DAYS days."""
        if end < start:
            raise ValueError(f"the range ends ({end}) before it starts ({start})")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days at once")
        since = datetime.combine(start, time(), tzinfo=UTC)
        # The end of 9999-12-31 is the last instant a datetime has (no day after it exists).
        until = (
            datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
            if end < date.max
            else datetime.max.replace(tzinfo=UTC)
        )
        tallies: defaultdict[date, _Tally] = defaultdict(_Tally)

        def work(connection: Connection) -> None:
            postgres = self._is_postgres(connection)
            for statement, apply in (
                (_messages_query(account_id, since, until, postgres), _apply_messages),
                (_replies_query(account_id, since, until, postgres), _apply_replies),
                (_deferred_query(account_id, since, until, postgres), _apply_deferred),
                (_durations_query(account_id, since, until), _apply_durations),
            ):
                apply(tallies, connection.execute(statement))

        await self._read(work)
        totals = _Tally()
        days = []
        for offset in range((end - start).days + 1):
            day = start + timedelta(days=offset)
            tally = tallies.get(day) or _Tally()
            totals.merge(tally)
            days.append(tally.freeze(day))
        return StatsReport(account_id, start, end, days, totals.freeze(None))


# --- queries ------------------------------------------------------------------------------------


def _utc_day(column: Any, postgres: bool) -> sa.ColumnElement[Any]:
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD' text. Constants are inlined, not
    bound, so PostgreSQL sees the same expression in SELECT and GROUP BY."""
    if postgres:
        utc = sa.func.timezone(sa.literal_column("'UTC'"), column)
        return sa.func.to_char(utc, sa.literal_column("'YYYY-MM-DD'"))
    return sa.func.date(column)  # SQLite stores naive UTC text: 'YYYY-MM-DD HH:MM:SS.ffffff'


def _reply_when() -> sa.ColumnElement[datetime]:
    return sa.func.coalesce(R.c.finished_at, R.c.created_at)


def _messages_query(account_id: int, since: datetime, until: datetime, postgres: bool) -> Any:
    linked = R.alias("linked")
    day = _utc_day(M.c.date, postgres).label("day")
    keys = (
        day,
        M.c.direction,
        M.c.state,
        M.c.state_reason,
        linked.c.state.label("reply_state"),
        linked.c.reason.label("reply_reason"),
    )
    return (
        sa.select(
            *keys,
            sa.func.count().label("n"),
            sa.func.sum(M.c.prompt_tokens).label("prompt"),
            sa.func.sum(M.c.completion_tokens).label("completion"),
            sa.func.sum(M.c.cost_usd).label("cost"),
        )
        .select_from(M.outerjoin(linked, linked.c.id == M.c.reply_id))
        .where(M.c.account_id == account_id, M.c.date >= since, M.c.date < until)
        .group_by(*keys)
    )


def _replies_query(account_id: int, since: datetime, until: datetime, postgres: bool) -> Any:
    when = _reply_when()
    day = _utc_day(when, postgres).label("day")
    keys = (day, R.c.state, R.c.reason)
    return (
        sa.select(
            *keys,
            sa.func.count().label("n"),
            sa.func.sum(R.c.prompt_tokens).label("prompt"),
            sa.func.sum(R.c.completion_tokens).label("completion"),
            sa.func.sum(R.c.cost_usd).label("cost"),
        )
        .where(R.c.account_id == account_id, when >= since, when < until)
        .group_by(*keys)
    )


def _deferred_query(account_id: int, since: datetime, until: datetime, postgres: bool) -> Any:
    day = _utc_day(R.c.created_at, postgres).label("day")
    return (
        sa.select(day, sa.func.count().label("n"))
        .where(
            R.c.account_id == account_id,
            R.c.created_at >= since,
            R.c.created_at < until,
            R.c.decision["action"].as_string() == "defer",
        )
        .group_by(day)
    )


def _durations_query(account_id: int, since: datetime, until: datetime) -> Any:
    first = sa.func.min(M.c.date).label("first_incoming")
    return (
        sa.select(R.c.id, R.c.finished_at, first)
        .join(M, (M.c.reply_id == R.c.id) & (M.c.direction == "incoming"))
        .where(
            R.c.account_id == account_id,
            R.c.state == "sent",
            R.c.finished_at >= since,
            R.c.finished_at < until,
        )
        .group_by(R.c.id, R.c.finished_at)
    )


# --- folding rows into tallies ------------------------------------------------------------------


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _apply_messages(tallies: defaultdict[date, _Tally], rows: Iterable[Any]) -> None:
    for row in rows:
        tally = tallies[_day(row.day)]
        tally.usage(row.prompt, row.completion, row.cost)
        if row.direction != "incoming":
            continue
        tally.received += row.n
        if row.state in _OUTCOMES and row.reply_state != row.state:
            tally.outcome(row.state, row.state_reason, row.n)
        if row.state_reason == _ESCALATED and row.reply_reason != _ESCALATED:
            tally.escalated += row.n


def _apply_replies(tallies: defaultdict[date, _Tally], rows: Iterable[Any]) -> None:
    for row in rows:
        tally = tallies[_day(row.day)]
        tally.usage(row.prompt, row.completion, row.cost)
        if row.state == "sent":
            tally.replied += row.n
        else:
            tally.outcome(row.state, row.reason, row.n)
        if row.reason == _ESCALATED:
            tally.escalated += row.n


def _apply_deferred(tallies: defaultdict[date, _Tally], rows: Iterable[Any]) -> None:
    for row in rows:
        tallies[_day(row.day)].deferred += row.n


def _apply_durations(tallies: defaultdict[date, _Tally], rows: Iterable[Any]) -> None:
    for row in rows:
        seconds = max(0.0, (row.finished_at - row.first_incoming).total_seconds())
        tallies[row.finished_at.astimezone(UTC).date()].durations.append(seconds)
