"""The Telegram-Business keys of [twin] and [schedule]: defaults that keep older configs
answering as before, errors that name the key, and the policy they become."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from twin.config import ScheduleSettings, TwinSettings, load_settings
from twin.domain.policies.away import AwayMode
from twin.errors import ConfigError
from twin.services.policy import account_policy, behaviour_of


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_change_nothing_for_older_configs(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[schedule]\noutside_hours = "away"\n'))
    policy = account_policy(behaviour_of(settings))
    assert policy.away.mode is AwayMode.OFF and not policy.away.offline_only
    assert policy.away.offline_minutes == 10
    assert policy.outside_hours_mode == "away"
    assert not policy.recipients.exclude_selected


def test_custom_range_from_the_file(tmp_path: Path) -> None:
    text = (
        '[schedule]\ntimezone = "Europe/Berlin"\naway = "custom"\n'
        'away_start = "2026-08-01"\naway_end = "2026-08-14T18:00"\n'
        "away_only_if_offline = true\naway_offline_minutes = 15\n"
    )
    policy = account_policy(behaviour_of(load_settings(write(tmp_path, text))))
    assert policy.away.mode is AwayMode.CUSTOM
    # a date starts at local midnight; a naive datetime is in the schedule's time zone
    assert policy.away.start == datetime(2026, 7, 31, 22, 0, tzinfo=UTC)
    assert policy.away.end == datetime(2026, 8, 14, 16, 0, tzinfo=UTC)
    assert policy.away.offline_only and policy.away.offline_minutes == 15


def test_a_date_end_is_inclusive() -> None:
    schedule = ScheduleSettings(away="custom", away_start="2026-08-01", away_end="2026-08-01")
    assert schedule.away_span() == (
        datetime(2026, 8, 1, tzinfo=UTC),
        datetime(2026, 8, 2, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"away": "custom"}, "schedule.away_start: needed with away = 'custom'"),
        ({"away_start": "2026-08-01"}, "schedule.away_end: needed when the other end"),
        (
            {"away": "custom", "away_start": "2026-08-02", "away_end": "2026-08-01T12:00"},
            "schedule.away_end: 2026-08-01T12:00:00+00:00 is not after schedule.away_start",
        ),
        (
            {"away": "custom", "away_start": "soon", "away_end": "2026-08-01"},
            "schedule.away_start: 'soon' is not an ISO date or datetime",
        ),
        ({"away": "sometimes"}, "away"),
        ({"away_offline_minutes": -1}, "away_offline_minutes"),
    ],
)
def test_bad_away_settings_name_the_key(fields: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError) as info:
        ScheduleSettings(**fields)  # type: ignore[arg-type]
    assert error in str(info.value)


def test_away_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_SCHEDULE__AWAY", "always")
    monkeypatch.setenv("TWIN_SCHEDULE__AWAY_ONLY_IF_OFFLINE", "true")
    monkeypatch.setenv("TWIN_TWIN__EXCLUDE_SELECTED", "true")
    monkeypatch.setenv("TWIN_TWIN__CONTACTS", "false")
    settings = load_settings(write(tmp_path, ""))
    assert settings.schedule.away == "always" and settings.schedule.away_only_if_offline
    policy = account_policy(behaviour_of(settings))
    assert policy.recipients.exclude_selected and not policy.recipients.contacts


def test_exclude_selected_with_every_category_ticked_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        TwinSettings(exclude_selected=True)
    assert "twin.exclude_selected = true leaves out the categories set to true" in str(info.value)
    rules = TwinSettings(exclude_selected=True, existing_chats=False, new_chats=False)
    assert rules.exclude_selected


def test_an_account_override_turns_the_rules_on() -> None:
    settings = load_settings(None)
    behaviour = behaviour_of(
        settings,
        {
            "schedule": {"away": "outside_hours", "away_only_if_offline": True},
            "twin": {
                "exclude_selected": True,
                "existing_chats": False,
                "new_chats": False,
                "non_contacts": False,
            },
        },
    )
    policy = account_policy(behaviour)
    assert policy.away.mode is AwayMode.OUTSIDE_HOURS and policy.away.offline_only
    assert policy.recipients.exclude_selected and policy.recipients.contacts


def test_more_than_28_working_hour_ranges_are_refused(tmp_path: Path) -> None:
    ranges = '["00:00-01:00", "02:00-03:00", "04:00-05:00", "06:00-07:00", "08:00-09:00"]'
    text = "[schedule.hours]\n" + "".join(
        f"{day} = {ranges}\n" for day in ("mon", "tue", "wed", "thu", "fri", "sat")
    )
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert any(
        problem.startswith("schedule.hours: 30 intervals a week, at most 28")
        for problem in info.value.problems
    ), info.value.problems
