from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.domain.models import SkipReason
from twin.domain.policies.away import (
    AwayMode,
    AwayRule,
    away_applies,
    check_away,
    greeting_why,
    needs_greeting,
    owner_online,
    should_send_away,
)

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_away_hours_ago", "repeat_hours", "expected"),
    [
        (None, 12, True),
        (1, 12, False),
        (11.99, 12, False),
        (12, 12, True),
        (30, 12, True),
        (0, 0, True),  # repeat 0: every message outside hours gets it
    ],
)
def test_away_repeat_window(
    last_away_hours_ago: float | None, repeat_hours: float, expected: bool
) -> None:
    last = None if last_away_hours_ago is None else NOW - timedelta(hours=last_away_hours_ago)
    assert should_send_away(last, NOW, repeat_hours) is expected


@pytest.mark.parametrize(
    ("new", "days_ago", "after_days", "expected"),
    [
        (True, None, 0, True),  # a new chat is always greeted
        (True, 1, 7, True),
        (False, None, 0, False),  # 0 days: new chats only
        (False, 30, 0, False),
        (False, None, 7, True),  # the contact never wrote here before
        (False, 6.9, 7, False),
        (False, 7, 7, True),
    ],
)
def test_greeting(new: bool, days_ago: float | None, after_days: float, expected: bool) -> None:
    last = None if days_ago is None else NOW - timedelta(days=days_ago)
    assert needs_greeting(new, last, NOW, after_days) is expected


def test_a_pending_greeting_is_not_repeated() -> None:
    assert not needs_greeting(True, None, NOW, 7, greeting_pending=True)
    assert not needs_greeting(False, NOW - timedelta(days=30), NOW, 7, greeting_pending=True)


def test_greeting_explains_itself() -> None:
    assert greeting_why(True, None, NOW, 7) == "greeting: new chat"
    assert greeting_why(False, None, NOW, 7) == "greeting: the first message of this chat"
    line = greeting_why(False, NOW - timedelta(days=14, hours=12), NOW, 14)
    assert line == "greeting: no message in this chat for 14.5 days (greeting_after_days = 14)"


VACATION = AwayRule(
    mode=AwayMode.CUSTOM,
    start=datetime(2025, 8, 1, tzinfo=UTC),
    end=datetime(2025, 8, 15, tzinfo=UTC),
)


class TestAwayRule:
    def test_mode_from_config_string(self) -> None:
        assert AwayRule(mode="always").mode is AwayMode.ALWAYS  # type: ignore[arg-type]

    def test_bad_mode_names_the_key(self) -> None:
        with pytest.raises(ValueError, match=r"^schedule\.away: 'sometimes' is not one of off"):
            AwayRule(mode="sometimes")  # type: ignore[arg-type]

    def test_custom_needs_a_range(self) -> None:
        with pytest.raises(ValueError, match="needs away_start and away_end"):
            AwayRule(mode=AwayMode.CUSTOM, start=NOW)
        with pytest.raises(ValueError, match=r"^schedule\.away_end: .* is not after away_start"):
            AwayRule(mode=AwayMode.CUSTOM, start=NOW, end=NOW)
        with pytest.raises(ValueError, match="timezone-aware"):
            AwayRule(mode=AwayMode.CUSTOM, start=datetime(2025, 1, 1), end=NOW)

    def test_offline_minutes(self) -> None:
        with pytest.raises(ValueError, match="away_offline_minutes"):
            AwayRule(offline_minutes=float("nan"))


@pytest.mark.parametrize(
    ("rule", "now", "open_now", "applies"),
    [
        (AwayRule(), NOW, False, False),  # off: the working hours decide alone
        (AwayRule(mode=AwayMode.ALWAYS), NOW, True, True),
        (AwayRule(mode=AwayMode.OUTSIDE_HOURS), NOW, True, False),
        (AwayRule(mode=AwayMode.OUTSIDE_HOURS), NOW, False, True),
        (VACATION, datetime(2025, 7, 31, 23, 59, tzinfo=UTC), True, False),
        (VACATION, datetime(2025, 8, 1, tzinfo=UTC), True, True),  # start inclusive
        (VACATION, datetime(2025, 8, 14, 23, 59, tzinfo=UTC), False, True),
        (VACATION, datetime(2025, 8, 15, tzinfo=UTC), False, False),  # end exclusive
    ],
)
def test_away_modes(rule: AwayRule, now: datetime, open_now: bool, applies: bool) -> None:
    assert (away_applies(rule, now, open_now=open_now) is not None) is applies


@pytest.mark.parametrize(
    ("minutes_ago", "online"),
    [(None, False), (0, True), (9.99, True), (10, False), (60, False), (-5, True)],
)
def test_owner_online_within_the_window(minutes_ago: float | None, online: bool) -> None:
    active = None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago)
    assert owner_online(active, NOW, 10) is online


def away(rule: AwayRule, **kw: object) -> tuple[SkipReason | None, str] | None:
    fields: dict[str, object] = {
        "closed": "outside working hours (Mon 12:00 UTC)",
        "outside_hours_away": False,
        "repeat_hours": 12.0,
        "last_away_at": None,
        "owner_active_at": None,
    }
    fields.update(kw)
    return check_away(rule, NOW, **fields)  # type: ignore[arg-type]


class TestCheckAway:
    def test_not_due(self) -> None:
        assert away(AwayRule()) is None
        assert away(AwayRule(mode=AwayMode.OUTSIDE_HOURS), closed=None) is None

    def test_outside_hours_mode_and_the_older_outside_hours_away_are_the_same(self) -> None:
        new = away(AwayRule(mode=AwayMode.OUTSIDE_HOURS))
        old = away(AwayRule(), outside_hours_away=True)
        assert new == (
            None,
            "outside working hours (Mon 12:00 UTC); away = outside_hours; "
            "sending the away message now",
        )
        assert old == (
            None,
            "outside working hours (Mon 12:00 UTC); outside_hours = away; "
            "sending the away message now",
        )
        assert away(AwayRule(), outside_hours_away=True, closed=None) is None

    def test_custom_range_on_top_of_outside_hours_away(self) -> None:
        result = away(VACATION, outside_hours_away=True)
        assert result is not None and "outside_hours = away" in result[1]

    def test_only_if_offline_withholds_it_while_the_owner_is_around(self) -> None:
        rule = AwayRule(mode=AwayMode.ALWAYS, offline_only=True, offline_minutes=10)
        result = away(rule, owner_active_at=NOW - timedelta(minutes=3))
        assert result == (
            SkipReason.OWNER_ONLINE,
            "away = always; the owner was active 3 min ago (2025-01-06T11:57:00+00:00), within "
            "10 min: no away message (away_only_if_offline = true)",
        )
        assert away(rule, owner_active_at=NOW - timedelta(minutes=10)) == (
            None,
            "away = always; sending the away message now",
        )
        # without "only if offline" the owner's activity does not matter
        plain = AwayRule(mode=AwayMode.ALWAYS)
        assert away(plain, owner_active_at=NOW)[0] is None  # type: ignore[index]

    def test_repeat_window(self) -> None:
        rule = AwayRule(mode=AwayMode.ALWAYS)
        result = away(rule, last_away_at=NOW - timedelta(hours=1))
        assert result is not None and result[0] is SkipReason.AWAY_ALREADY_SENT
        assert "repeat every 12 h" in result[1]
