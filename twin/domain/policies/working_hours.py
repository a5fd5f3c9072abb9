"""Working hours in the owner's wall-clock time, with vacations.

Ranges are wall-clock ("09:00-18:00" means whatever the owner's clock shows), so across a DST
switch an hour-long gap or repeat follows the clock: a range starting inside the spring-forward
gap opens when the clock jumps, and the repeated autumn hour is open (or closed) twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twin.domain.models import require_aware

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {name: i for i, name in enumerate(DAYS)} | {
    full: i
    for i, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_RANGE = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_HHMM = re.compile(r"([0-9]{2}):([0-9]{2})")
_CLOSED_WORDS = frozenset({"", "closed", "off", "none"})
_DAY = 24 * 60
# Telegram Business accepts at most 28 opening intervals a week (BusinessWorkHours.weekly_open).
MAX_INTERVALS = 28

# A weekly pattern repeats every 7 days; one more day covers ranges spilling past midnight and
# another week covers a range that a DST gap swallowed this week.
_SEARCH_DAYS = 15

Span = tuple[int, int]  # (start minute, end minute) of a day; end <= start crosses midnight


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """`week[i]` holds the ranges starting on weekday i (Monday = 0); `week = None` = always open.

    `closed` holds half-open [start, end) UTC spans (vacations) that override the week.
    Build it with `from_config` (validates the strings) or `always_open`.
    """

    timezone: str = "UTC"
    week: tuple[tuple[Span, ...], ...] | None = None
    closed: tuple[tuple[datetime, datetime], ...] = ()
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", _zone(self.timezone, "schedule.timezone"))
        if self.week is not None:
            if len(self.week) != 7:
                raise ValueError(f"WorkingHours.week needs 7 days, got {len(self.week)}")
            count = sum(len(spans) for spans in self.week)
            if count > MAX_INTERVALS:
                raise ValueError(
                    f"WorkingHours.week: {count} intervals, at most {MAX_INTERVALS} a week"
                )
            for spans in self.week:
                for start, end in spans:
                    if not (0 <= start < _DAY and 0 < end <= _DAY and start != end):
                        raise ValueError(f"WorkingHours.week: bad span {(start, end)}")
        spans = []
        for start, end in self.closed:
            require_aware(start, "WorkingHours.closed start")
            require_aware(end, "WorkingHours.closed end")
            if end <= start:
                raise ValueError(f"WorkingHours.closed: {start} .. {end} ends before it starts")
            spans.append((start.astimezone(UTC), end.astimezone(UTC)))
        object.__setattr__(self, "closed", tuple(sorted(spans)))

    @classmethod
    def always_open(cls, timezone: str = "UTC") -> WorkingHours:
        return cls(timezone=timezone)

    @classmethod
    def from_config(
        cls,
        timezone: str,
        hours: Mapping[str, str | Sequence[str]] | None,
        closed: Iterable[str | date | datetime | Sequence[str | date | datetime]] = (),
        *,
        section: str = "schedule",
    ) -> WorkingHours:
        """Parse config values; every error names its key, e.g. `schedule.hours.mon: …`.

        `hours`: day ("mon".."sun" or full names) → "HH:MM-HH:MM" ranges, as a list or one
        comma-separated string; a missing day, "" or "closed" is closed. "00:00-24:00" is all day;
        "22:00-02:00" on fri runs until sat 02:00. An empty/None mapping means always open.
        At most 28 ranges a week in all, Telegram Business's limit.
        `closed`: vacations, each an ISO date ("2025-12-31": that whole local day), a pair
        (start, end) of ISO dates/datetimes, or "start/end". Date ends are inclusive; naive
        datetimes are read in `timezone`.
        """
        tz = _zone(timezone, f"{section}.timezone")
        week: tuple[tuple[Span, ...], ...] | None = None
        if hours:
            days: list[list[Span]] = [[] for _ in DAYS]
            for key, value in hours.items():
                index = _DAY_ALIASES.get(key.strip().lower())
                if index is None:
                    raise ValueError(
                        f"{section}.hours: unknown day {key!r} (use {', '.join(DAYS)})"
                    )
                where = f"{section}.hours.{DAYS[index]}"
                items = value.split(",") if isinstance(value, str) else list(value)
                for item in items:
                    if item.strip().lower() in _CLOSED_WORDS:
                        continue
                    days[index].append(parse_range(item, where=where))
            count = sum(len(spans) for spans in days)
            if count > MAX_INTERVALS:
                raise ValueError(
                    f"{section}.hours: {count} intervals a week, at most {MAX_INTERVALS} "
                    "(Telegram Business's limit); merge adjacent ranges"
                )
            week = tuple(tuple(sorted(spans)) for spans in days)
        spans = [
            _parse_closed(entry, tz, where=f"{section}.closed[{i}]")
            for i, entry in enumerate(closed)
        ]
        return cls(timezone=timezone, week=week, closed=tuple(spans))

    @property
    def never_open(self) -> bool:
        return self.week is not None and not any(self.week)


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{where}: unknown IANA timezone {name!r}") from None


def _minute(hh: str, mm: str, *, allow_24: bool) -> int | None:
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and (m != 0 or not allow_24)):
        return None
    return h * 60 + m


def parse_range(text: str, *, where: str = "range") -> Span:
    """Minutes of day: "09:00-18:00" → (540, 1080); "22:00-02:00" → (1320, 120), past midnight."""
    raw = text.strip()
    match = _RANGE.fullmatch(raw.replace(" ", ""))
    start = end = None
    if match:
        start = _minute(match[1], match[2], allow_24=False)
        end = _minute(match[3], match[4], allow_24=True)
    if start is None or end is None:
        raise ValueError(f"{where}: {text!r} is not HH:MM-HH:MM")
    if end == 0:
        end = _DAY  # "22:00-00:00" ends at midnight, same as "22:00-24:00"
    if start == end:
        raise ValueError(f"{where}: {text!r} is empty (use 00:00-24:00 for all day)")
    return start, end


def parse_hhmm(text: str, *, where: str = "time") -> int:
    """Minute of day: "23:00" → 1380."""
    match = _HHMM.fullmatch(text.strip())
    minute = _minute(match[1], match[2], allow_24=True) if match else None
    if minute is None:
        raise ValueError(f"{where}: {text!r} is not HH:MM")
    return minute


def _parse_point(value: str | date | datetime, tz: ZoneInfo, where: str) -> date | datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{where}: {text!r} is not an ISO date or datetime") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def _as_instant(value: date | datetime, tz: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value
    # A bare date means the whole local day; as an end it is inclusive.
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=tz)


def parse_span(
    start: str | date | datetime,
    end: str | date | datetime,
    timezone: str,
    *,
    start_key: str,
    end_key: str,
) -> tuple[datetime, datetime]:
    """A [start, end) UTC span from ISO dates/datetimes, read as `closed` entries are: a date
    start is the beginning of that local day, a date end is inclusive (the whole day), naive
    datetimes are in `timezone`. Errors name the key at fault."""
    tz = _zone(timezone, "schedule.timezone")
    lo = _as_instant(_parse_point(start, tz, start_key), tz, end=False)
    hi = _as_instant(_parse_point(end, tz, end_key), tz, end=True)
    if hi <= lo:
        raise ValueError(f"{end_key}: {hi.isoformat()} is not after {start_key} {lo.isoformat()}")
    return lo.astimezone(UTC), hi.astimezone(UTC)


def _parse_closed(
    entry: str | date | datetime | Sequence[str | date | datetime], tz: ZoneInfo, *, where: str
) -> tuple[datetime, datetime]:
    if isinstance(entry, str) and "/" in entry:
        entry = tuple(entry.split("/", 1))
    if isinstance(entry, str | date):  # one day (datetime is a date subclass, refused below)
        point = _parse_point(entry, tz, where)
        if isinstance(point, datetime):
            raise ValueError(f"{where}: a single datetime is not a span; give start/end")
        start_raw = end_raw = point
    else:
        parts = list(entry)
        if len(parts) != 2:
            raise ValueError(f"{where}: expected (start, end), got {len(parts)} values")
        start_raw = _parse_point(parts[0], tz, f"{where}.start")
        end_raw = _parse_point(parts[1], tz, f"{where}.end")
    start = _as_instant(start_raw, tz, end=False)
    end = _as_instant(end_raw, tz, end=True)
    if end <= start:
        raise ValueError(
            f"{where}: ends ({end.isoformat()}) before it starts ({start.isoformat()})"
        )
    return start.astimezone(UTC), end.astimezone(UTC)


# --- queries -------------------------------------------------------------------------------


def _wall_open(hours: WorkingHours, now: datetime) -> bool:
    if hours.week is None:
        return True
    local = now.astimezone(hours.tz)
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    for start, end in hours.week[weekday]:
        if start <= minute and (minute < end or end <= start):
            return True
    # yesterday's ranges that cross midnight
    return any(end <= start and minute < end for start, end in hours.week[weekday - 1])


def _closed_span_at(hours: WorkingHours, now: datetime) -> tuple[datetime, datetime] | None:
    for start, end in hours.closed:
        if start <= now < end:
            return start, end
    return None


def is_open(hours: WorkingHours, now: datetime) -> bool:
    require_aware(now, "now")
    return _closed_span_at(hours, now) is None and _wall_open(hours, now)


def next_opening(hours: WorkingHours, now: datetime) -> datetime | None:
    """The earliest instant >= now at which `is_open` holds; None if that never happens.

    Always in UTC: an aware datetime in the repeated autumn hour (fold=1) never compares equal
    to one in another zone (PEP 495), a trap for whoever stores or compares the result.
    """
    require_aware(now, "now")
    if hours.never_open:
        return None
    t = now
    # Each pass either succeeds or jumps past one vacation, so this loop is bounded.
    for _ in range(len(hours.closed) + 1):
        candidate = _next_wall_opening(hours, t)
        if candidate is None:
            return None
        span = _closed_span_at(hours, candidate)
        if span is None:
            return candidate.astimezone(UTC)
        t = span[1]
    return None


def _next_wall_opening(hours: WorkingHours, now: datetime) -> datetime | None:
    """Like next_opening but ignoring vacations."""
    if _wall_open(hours, now):
        return now
    assert hours.week is not None  # always-open schedules returned above
    tz = hours.tz
    horizon = now + timedelta(days=_SEARCH_DAYS)
    # The schedule can only switch to open where the wall clock reaches a range start or where
    # it jumps (a DST transition); so these candidates contain the answer.
    candidates = _transitions(tz, now, horizon)
    first_day = now.astimezone(tz).date() - timedelta(days=1)
    for offset in range(_SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        for start, _end in hours.week[day.weekday()]:
            candidates.extend(_wall_instants(day, start, tz))
    best = None
    for candidate in candidates:
        if now <= candidate and (best is None or candidate < best) and _wall_open(hours, candidate):
            best = candidate
    return best


def _wall_instants(day: date, minute: int, tz: ZoneInfo) -> list[datetime]:
    """The instants at which the clock shows `day minute`: none in a DST gap, two in a repeat."""
    instants = []
    for fold in (0, 1):
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz).replace(fold=fold)
        utc = local.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
            instants.append(utc)
    return instants


def _transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants in [start, end] at which the zone's offset changes.

    Scans hourly, then bisects on whole seconds (zones switch on whole minutes). zoneinfo has no
    public transition list, and this stays correct for odd zones (30-minute DST, Lord Howe).
    """

    def offset(ts: int) -> timedelta | None:
        return datetime.fromtimestamp(ts, tz).utcoffset()

    found = []
    lo = int(start.timestamp())  # floor to a whole second
    stop = end.timestamp()
    lo_offset = offset(lo)
    while lo < stop:
        hi = lo + 3600
        hi_offset = offset(hi)
        if hi_offset != lo_offset:
            a, b = lo, hi  # offset(a) == lo_offset != offset(b)
            while b - a > 1:
                mid = (a + b) // 2
                if offset(mid) == lo_offset:
                    a = mid
                else:
                    b = mid
            found.append(datetime.fromtimestamp(b, UTC))
        lo, lo_offset = hi, hi_offset
    return found
