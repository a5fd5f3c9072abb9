from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.domain.policies.away import needs_greeting, should_send_away

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
