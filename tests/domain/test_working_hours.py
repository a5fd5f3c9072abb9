from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.policies.working_hours import (
    DAYS,
    WorkingHours,
    is_open,
    next_opening,
    parse_hhmm,
    parse_range,
)

BERLIN = ZoneInfo("Europe/Berlin")
MOSCOW = ZoneInfo("Europe/Moscow")
OFFICE = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}

# 2025-01-06 is a Monday.
MON = date(2025, 1, 6)


def at(day: date, hh: int, mm: int = 0, tz: tzinfo = UTC) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=tz)


def plus(day: date, days: int) -> date:
    return day + timedelta(days=days)


class TestParsing:
    def test_range(self) -> None:
        assert parse_range("09:00-18:00") == (540, 1080)
        assert parse_range(" 09:00 - 18:00 ") == (540, 1080)
        assert parse_range("22:00-02:00") == (1320, 120)
        assert parse_range("00:00-24:00") == (0, 1440)
        assert parse_range("22:00-00:00") == (1320, 1440)

    @pytest.mark.parametrize(
        "text", ["25:00-26:00", "9:00-18:00", "09:60-10:00", "24:00-24:00", "nine-five", "09:00"]
    )
    def test_bad_range_names_the_key(self, text: str) -> None:
        with pytest.raises(ValueError) as err:
            WorkingHours.from_config("UTC", {"mon": ["10:00-11:00", text]})
        assert str(err.value) == f"schedule.hours.mon: {text!r} is not HH:MM-HH:MM"

    def test_exact_message(self) -> None:
        with pytest.raises(ValueError) as err:
            WorkingHours.from_config("UTC", {"mon": "25:00-26:00"})
        assert str(err.value) == "schedule.hours.mon: '25:00-26:00' is not HH:MM-HH:MM"

    def test_empty_range_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"schedule.hours.tue: '09:00-09:00' is empty"):
            WorkingHours.from_config("UTC", {"tue": ["09:00-09:00"]})

    def test_unknown_day(self) -> None:
        with pytest.raises(ValueError, match=r"schedule.hours: unknown day 'funday'"):
            WorkingHours.from_config("UTC", {"funday": ["09:00-18:00"]})

    def test_unknown_timezone(self) -> None:
        with pytest.raises(ValueError, match=r"^schedule\.timezone: unknown IANA timezone 'Mars/"):
            WorkingHours.from_config("Mars/Base", OFFICE)

    def test_forms_of_a_day(self) -> None:
        hours = WorkingHours.from_config(
            "UTC",
            {
                "Monday": "09:00-12:00, 13:00-18:00",
                "tue": ["13:00-18:00", "09:00-12:00"],
                "wed": "closed",
                "thu": [],
                "fri": "",
            },
        )
        assert hours.week is not None
        assert hours.week[0] == hours.week[1] == ((540, 720), (780, 1080))
        assert hours.week[2:] == ((), (), (), (), ())

    def test_empty_mapping_means_always_open(self) -> None:
        for empty in ({}, None):
            hours = WorkingHours.from_config("Europe/Berlin", empty)
            assert hours.week is None
            assert is_open(hours, at(MON, 3))

    def test_hhmm(self) -> None:
        assert parse_hhmm("23:30") == 1410
        with pytest.raises(ValueError, match=r"^humanize\.night_start: '7' is not HH:MM$"):
            parse_hhmm("7", where="humanize.night_start")

    def test_closed_spans(self) -> None:
        hours = WorkingHours.from_config(
            "Europe/Moscow",
            OFFICE,
            closed=[
                "2025-01-01",
                ("2025-02-01", "2025-02-03"),
                "2025-03-01T12:00/2025-03-02T08:00+00:00",
                (datetime(2025, 4, 1, tzinfo=UTC), date(2025, 4, 1)),
            ],
        )
        msk = timedelta(hours=3)
        assert hours.closed == (
            (datetime(2025, 1, 1, tzinfo=UTC) - msk, datetime(2025, 1, 2, tzinfo=UTC) - msk),
            # a date end is inclusive: closed through Feb 3
            (datetime(2025, 2, 1, tzinfo=UTC) - msk, datetime(2025, 2, 4, tzinfo=UTC) - msk),
            # a naive datetime is local time
            (datetime(2025, 3, 1, 9, tzinfo=UTC), datetime(2025, 3, 2, 8, tzinfo=UTC)),
            (datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 4, 2, tzinfo=UTC) - msk),
        )

    @pytest.mark.parametrize(
        ("entry", "error"),
        [
            ("tomorrow", r"schedule.closed\[0\]: 'tomorrow' is not an ISO date"),
            (("2025-02-03", "2025-02-01"), r"schedule.closed\[0\]: ends .* before it starts"),
            (("2025-02-01",), r"schedule.closed\[0\]: expected \(start, end\), got 1"),
            ("2025-02-01T10:00", r"schedule.closed\[0\]: a single datetime is not a span"),
            (("2025-02-01", "soon"), r"schedule.closed\[0\].end: 'soon' is not an ISO date"),
        ],
    )
    def test_bad_closed_span(self, entry: object, error: str) -> None:
        with pytest.raises(ValueError, match=error):
            WorkingHours.from_config("UTC", OFFICE, closed=[entry])  # type: ignore[list-item]

    def test_direct_construction_is_validated(self) -> None:
        with pytest.raises(ValueError, match="7 days"):
            WorkingHours(week=((),))
        with pytest.raises(ValueError, match="bad span"):
            WorkingHours(week=(((600, 600),),) + ((),) * 6)
        with pytest.raises(ValueError, match="timezone-aware"):
            WorkingHours(closed=((datetime(2025, 1, 1), datetime(2025, 1, 2)),))


class TestIsOpen:
    HOURS = WorkingHours.from_config("UTC", OFFICE)

    def test_boundaries_are_start_inclusive_end_exclusive(self) -> None:
        assert not is_open(self.HOURS, at(MON, 8, 59))
        assert is_open(self.HOURS, at(MON, 9, 0))
        assert is_open(self.HOURS, at(MON, 17, 59) + timedelta(seconds=59))
        assert not is_open(self.HOURS, at(MON, 18, 0))

    def test_weekend_closed(self) -> None:
        assert not is_open(self.HOURS, at(plus(MON, 5), 12))
        assert not is_open(self.HOURS, at(plus(MON, 6), 12))

    def test_local_time_of_the_schedule_counts(self) -> None:
        hours = WorkingHours.from_config("Europe/Moscow", OFFICE)
        assert is_open(hours, at(MON, 6, 0))  # 09:00 in Moscow
        assert not is_open(hours, at(MON, 15, 0))  # 18:00 in Moscow
        assert is_open(hours, at(MON, 14, 0, MOSCOW))

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            is_open(self.HOURS, datetime(2025, 1, 6, 12))

    def test_range_crossing_midnight_belongs_to_its_start_day(self) -> None:
        hours = WorkingHours.from_config("UTC", {"fri": "22:00-02:00"})
        fri, sat = plus(MON, 4), plus(MON, 5)
        assert not is_open(hours, at(fri, 21, 59))
        assert is_open(hours, at(fri, 22, 0))
        assert is_open(hours, at(sat, 1, 59))
        assert not is_open(hours, at(sat, 2, 0))
        # Friday's early morning belongs to Thursday, which is closed
        assert not is_open(hours, at(fri, 1, 0))
        assert not is_open(hours, at(sat, 22, 30))

    def test_sunday_night_spills_into_monday(self) -> None:
        hours = WorkingHours.from_config("UTC", {"sun": "22:00-02:00"})
        assert is_open(hours, at(plus(MON, 7), 1))
        assert not is_open(hours, at(plus(MON, 7), 2))

    def test_all_day(self) -> None:
        hours = WorkingHours.from_config("UTC", {"sat": "00:00-24:00"})
        sat = plus(MON, 5)
        assert is_open(hours, at(sat, 0, 0))
        assert is_open(hours, at(sat, 23, 59))
        assert not is_open(hours, at(plus(sat, 1), 0, 0))
        assert not is_open(hours, at(sat, 0, 0) - timedelta(seconds=1))

    def test_vacation_overrides_the_week(self) -> None:
        hours = WorkingHours.from_config("UTC", OFFICE, closed=["2025-01-07"])
        assert is_open(hours, at(MON, 12))
        assert not is_open(hours, at(plus(MON, 1), 12))
        assert is_open(hours, at(plus(MON, 2), 9))


class TestNextOpening:
    HOURS = WorkingHours.from_config("UTC", OFFICE)

    def test_now_when_open(self) -> None:
        now = at(MON, 10, 17) + timedelta(seconds=3, microseconds=5)
        assert next_opening(self.HOURS, now) == now

    def test_later_today_and_over_the_weekend(self) -> None:
        assert next_opening(self.HOURS, at(MON, 7)) == at(MON, 9)
        assert next_opening(self.HOURS, at(MON, 18)) == at(plus(MON, 1), 9)
        assert next_opening(self.HOURS, at(plus(MON, 4), 18)) == at(plus(MON, 7), 9)

    def test_result_is_utc(self) -> None:
        hours = WorkingHours.from_config("Europe/Moscow", OFFICE)
        opening = next_opening(hours, at(MON, 5, tz=MOSCOW))
        assert opening == at(MON, 6)
        assert opening is not None and opening.tzinfo is UTC
        now = at(MON, 12, tz=MOSCOW)
        assert next_opening(hours, now) == now
        assert next_opening(hours, now).tzinfo is UTC  # type: ignore[union-attr]

    def test_never_open(self) -> None:
        hours = WorkingHours.from_config("UTC", {"mon": "closed"})
        assert hours.never_open
        assert next_opening(hours, at(MON, 12)) is None
        assert not is_open(hours, at(MON, 12))

    def test_always_open(self) -> None:
        hours = WorkingHours.always_open("Europe/Berlin")
        assert next_opening(hours, at(MON, 3)) == at(MON, 3)

    def test_inside_a_midnight_crossing_range(self) -> None:
        hours = WorkingHours.from_config("UTC", {"fri": "22:00-02:00"})
        sat = plus(MON, 5)
        assert next_opening(hours, at(sat, 1)) == at(sat, 1)
        assert next_opening(hours, at(sat, 2)) == at(plus(sat, 6), 22)

    def test_vacation_pushes_the_opening(self) -> None:
        hours = WorkingHours.from_config("UTC", OFFICE, closed=[("2025-01-06", "2025-01-08")])
        assert next_opening(hours, at(MON, 7)) == at(plus(MON, 3), 9)

    def test_vacation_ending_mid_range_opens_at_its_end(self) -> None:
        hours = WorkingHours.from_config(
            "UTC", OFFICE, closed=[("2025-01-03T12:00+00:00", "2025-01-06T12:30+00:00")]
        )
        assert next_opening(hours, at(plus(MON, -3), 13)) == at(MON, 12, 30)

    def test_chained_and_long_vacations(self) -> None:
        hours = WorkingHours.from_config(
            "UTC",
            OFFICE,
            closed=[("2025-01-06", "2025-02-28"), ("2025-02-20", "2025-03-04")],
        )
        # Mar 5 2025 is a Wednesday
        assert next_opening(hours, at(MON, 7)) == at(date(2025, 3, 5), 9)

    def test_vacation_on_the_only_open_day_skips_a_week(self) -> None:
        hours = WorkingHours.from_config("UTC", {"mon": "09:00-10:00"}, closed=["2025-01-06"])
        assert next_opening(hours, at(MON, 8)) == at(plus(MON, 7), 9)


class TestDaylightSaving:
    """Europe/Berlin: 2025-03-30 02:00 CET → 03:00 CEST, 2025-10-26 03:00 CEST → 02:00 CET."""

    SPRING = date(2025, 3, 30)  # a Sunday
    AUTUMN = date(2025, 10, 26)  # a Sunday

    def test_wall_clock_hours_move_in_utc(self) -> None:
        weekend = {"sat": "09:00-18:00", "sun": "09:00-18:00"}
        hours = WorkingHours.from_config("Europe/Berlin", weekend)
        assert next_opening(hours, at(plus(self.SPRING, -1), 0)) == at(plus(self.SPRING, -1), 8)
        assert next_opening(hours, at(self.SPRING, 0)) == at(self.SPRING, 7)
        assert is_open(hours, at(self.SPRING, 15, 59))  # 17:59 CEST
        assert not is_open(hours, at(self.SPRING, 16, 0))

    def test_range_starting_in_the_spring_gap_opens_when_the_clock_jumps(self) -> None:
        hours = WorkingHours.from_config("Europe/Berlin", {"sun": "02:30-04:00"})
        opening = next_opening(hours, at(self.SPRING, 0, 0, BERLIN))
        assert opening == at(self.SPRING, 1, 0)  # 03:00 CEST
        assert opening is not None and opening.astimezone(BERLIN).hour == 3

    def test_range_inside_the_spring_gap_does_not_happen_that_day(self) -> None:
        hours = WorkingHours.from_config("Europe/Berlin", {"sun": "02:15-02:45"})
        opening = next_opening(hours, at(plus(self.SPRING, -1), 12, 0, BERLIN))
        assert opening == datetime(2025, 4, 6, 0, 15, tzinfo=UTC)  # 02:15 CEST

    def test_range_ending_in_the_spring_gap(self) -> None:
        hours = WorkingHours.from_config("Europe/Berlin", {"sun": "01:00-02:30"})
        assert is_open(hours, datetime(2025, 3, 30, 1, 59, tzinfo=BERLIN))
        assert not is_open(hours, datetime(2025, 3, 30, 3, 0, tzinfo=BERLIN))

    def test_repeated_autumn_hour_reopens(self) -> None:
        hours = WorkingHours.from_config("Europe/Berlin", {"sun": "00:00-02:30"})
        first_0240 = datetime(2025, 10, 26, 2, 40, tzinfo=BERLIN)  # CEST, 00:40Z
        assert first_0240.utcoffset() == timedelta(hours=2)
        assert not is_open(hours, first_0240)
        opening = next_opening(hours, first_0240)
        assert opening == at(self.AUTUMN, 1, 0)  # the clock falls back to 02:00 CET
        assert is_open(hours, at(self.AUTUMN, 1, 29))
        assert not is_open(hours, at(self.AUTUMN, 1, 30))

    def test_range_starting_in_the_repeated_hour_uses_its_first_occurrence(self) -> None:
        hours = WorkingHours.from_config("Europe/Berlin", {"sun": "02:30-02:45"})
        assert next_opening(hours, at(self.AUTUMN, 0, 0)) == at(self.AUTUMN, 0, 30)
        # after the first 02:30-02:45 the clock repeats it an hour later
        assert next_opening(hours, at(self.AUTUMN, 0, 50)) == at(self.AUTUMN, 1, 30)

    def test_moscow_has_no_switch(self) -> None:
        hours = WorkingHours.from_config("Europe/Moscow", {"sun": "09:00-18:00"})
        for sunday in (self.SPRING, self.AUTUMN):
            assert next_opening(hours, at(sunday, 0)) == at(sunday, 6)


ZONES = ["UTC", "Europe/Berlin", "Europe/Moscow", "America/New_York", "Australia/Lord_Howe"]
# Around the switches of the zones above, where bugs live.
SWITCHES = [
    datetime(2025, 3, 30, tzinfo=UTC),
    datetime(2025, 10, 26, tzinfo=UTC),
    datetime(2025, 3, 9, tzinfo=UTC),
    datetime(2025, 11, 2, tzinfo=UTC),
    datetime(2025, 4, 6, tzinfo=UTC),
    datetime(2025, 10, 5, tzinfo=UTC),
]


def _range_text(start: int, length: int) -> str:
    end = (start + length) % 1440
    end_text = "24:00" if start + length == 1440 else f"{end // 60:02d}:{end % 60:02d}"
    return f"{start // 60:02d}:{start % 60:02d}-{end_text}"


day_ranges = st.lists(
    st.one_of(
        st.builds(
            _range_text,
            st.integers(0, 95).map(lambda q: q * 15),
            st.integers(1, 95).map(lambda q: q * 15),
        ),
        st.just("00:00-24:00"),
    ),
    max_size=2,
)
schedules = st.dictionaries(st.sampled_from(DAYS), day_ranges, min_size=1)
moments = st.builds(
    lambda base, offset: base + timedelta(minutes=offset),
    st.sampled_from(SWITCHES),
    st.integers(-3 * 1440, 3 * 1440),
)


@settings(deadline=None, max_examples=60)
@given(
    zone=st.sampled_from(ZONES),
    schedule=schedules,
    now=moments,
    seconds=st.integers(0, 59),
    vacation=st.one_of(
        st.none(), st.tuples(st.integers(-2 * 1440, 3 * 1440), st.integers(1, 6 * 1440))
    ),
)
def test_next_opening_is_the_first_open_instant(
    zone: str,
    schedule: dict[str, list[str]],
    now: datetime,
    seconds: int,
    vacation: tuple[int, int] | None,
) -> None:
    closed = []
    if vacation is not None:
        start = now + timedelta(minutes=vacation[0])
        closed.append((start, start + timedelta(minutes=vacation[1])))
    hours = WorkingHours.from_config(zone, schedule, closed=closed)
    now = now + timedelta(seconds=seconds)
    opening = next_opening(hours, now)
    if opening is None:
        assert hours.never_open
        return
    assert opening >= now
    assert is_open(hours, opening)
    if opening > now:
        assert not is_open(hours, now)
        assert not is_open(hours, opening - timedelta(seconds=1))
        # open/closed only changes on whole minutes (all offsets here are whole minutes)
        t = now.replace(second=0) + timedelta(minutes=1)
        while t < opening:
            assert not is_open(hours, t), t
            t += timedelta(minutes=1)
    if vacation is None:
        # a week, or two when a DST gap swallows the only range of the coming week
        assert opening - now <= timedelta(days=14)


class TestIntervalLimit:
    """Telegram Business accepts at most 28 opening intervals a week."""

    def test_28_intervals_are_accepted(self) -> None:
        four = ["00:00-01:00", "02:00-03:00", "04:00-05:00", "22:00-02:00"]
        hours = WorkingHours.from_config("UTC", dict.fromkeys(DAYS, four))
        assert hours.week is not None and sum(map(len, hours.week)) == 28
        assert is_open(hours, at(MON, 23, 30)) and is_open(hours, at(plus(MON, 1), 1, 30))

    def test_29_are_refused_naming_the_key(self) -> None:
        four = ["00:00-01:00", "02:00-03:00", "04:00-05:00", "06:00-07:00"]
        week = dict.fromkeys(DAYS, four) | {"sun": [*four, "08:00-09:00"]}
        with pytest.raises(ValueError) as err:
            WorkingHours.from_config("UTC", week)
        assert str(err.value) == (
            "schedule.hours: 29 intervals a week, at most 28 (Telegram Business's limit); "
            "merge adjacent ranges"
        )

    def test_direct_construction_is_checked_too(self) -> None:
        with pytest.raises(ValueError, match="29 intervals, at most 28"):
            WorkingHours(week=(((0, 10),) * 5,) * 5 + (((0, 10),) * 4,) * 1 + ((),))


class TestNewYorkDst:
    """The same wall-clock rules in a second zone: New York switches at 02:00 local on
    9 March 2025 (02:00-03:00 does not exist) and 2 November 2025 (01:00-02:00 twice)."""

    NY = ZoneInfo("America/New_York")
    SPRING = date(2025, 3, 9)  # a Sunday
    AUTUMN = date(2025, 11, 2)  # a Sunday

    def test_hours_follow_the_wall_clock(self) -> None:
        hours = WorkingHours.from_config("America/New_York", {"sun": "09:00-17:00"})
        assert next_opening(hours, at(self.SPRING, 0)) == at(self.SPRING, 13)  # EDT
        assert next_opening(hours, at(plus(self.SPRING, -7), 0)) == at(plus(self.SPRING, -7), 14)
        assert next_opening(hours, at(self.AUTUMN, 0)) == at(self.AUTUMN, 14)  # EST

    def test_range_starting_in_the_spring_gap_opens_when_the_clock_jumps(self) -> None:
        hours = WorkingHours.from_config("America/New_York", {"sun": "02:30-04:00"})
        opening = next_opening(hours, datetime(2025, 3, 9, 0, 0, tzinfo=self.NY))
        assert opening == at(self.SPRING, 7)  # 03:00 EDT
        assert opening is not None and opening.astimezone(self.NY).hour == 3

    def test_range_inside_the_spring_gap_skips_that_day(self) -> None:
        hours = WorkingHours.from_config("America/New_York", {"sun": "02:10-02:50"})
        opening = next_opening(hours, datetime(2025, 3, 8, 12, 0, tzinfo=self.NY))
        assert opening == datetime(2025, 3, 16, 6, 10, tzinfo=UTC)  # 02:10 EDT a week later

    def test_repeated_autumn_hour_is_open_twice(self) -> None:
        hours = WorkingHours.from_config("America/New_York", {"sun": "01:15-01:45"})
        first = next_opening(hours, at(self.AUTUMN, 0))
        assert first == at(self.AUTUMN, 5, 15)  # 01:15 EDT
        second = next_opening(hours, at(self.AUTUMN, 5, 50))
        assert second == at(self.AUTUMN, 6, 15)  # 01:15 EST, an hour later
        assert not is_open(hours, at(self.AUTUMN, 6, 0))  # 01:00 EST: before the range

    def test_night_range_across_the_switch(self) -> None:
        hours = WorkingHours.from_config("America/New_York", {"sat": "22:00-06:00"})
        # 22:00 EST Sat .. 06:00 EDT Sun is 7 hours of real time
        assert is_open(hours, at(self.SPRING, 9, 59))  # 05:59 EDT
        assert not is_open(hours, at(self.SPRING, 10, 0))
        assert is_open(hours, at(self.SPRING, 3, 0))  # Sat 22:00 EST
        assert not is_open(hours, at(self.SPRING, 2, 59))
        # and 9 hours across the autumn switch
        assert is_open(hours, at(self.AUTUMN, 10, 59))  # 05:59 EST
        assert is_open(hours, at(self.AUTUMN, 2, 0))  # Sat 22:00 EDT
        assert not is_open(hours, at(self.AUTUMN, 11, 0))  # 06:00 EST

    def test_a_holiday_overrides_the_week_in_local_days(self) -> None:
        hours = WorkingHours.from_config(
            "America/New_York", {"sun": "00:00-24:00"}, closed=["2025-11-02"]
        )
        assert not is_open(hours, at(self.AUTUMN, 4))  # 00:00 EDT
        assert not is_open(hours, datetime(2025, 11, 3, 4, 59, tzinfo=UTC))  # 23:59 EST
        assert next_opening(hours, at(self.AUTUMN, 4)) == datetime(2025, 11, 9, 5, 0, tzinfo=UTC)
