from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.models import SkipReason
from twin.domain.policies.rate_limits import (
    RateLimits,
    check_rate,
    debounce_deadline,
    replies_in_window,
)

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


class TestCheckRate:
    LIMITS = RateLimits(per_chat_per_hour=3, per_account_per_hour=5)

    def test_under_the_limits(self) -> None:
        assert check_rate(self.LIMITS, ago(1, 2), ago(1, 2, 3, 4), NOW) is None

    def test_chat_limit(self) -> None:
        assert check_rate(self.LIMITS, ago(1, 2, 3), [], NOW) is SkipReason.RATE_LIMITED_CHAT

    def test_account_limit(self) -> None:
        reason = check_rate(self.LIMITS, [], ago(1, 2, 3, 4, 5), NOW)
        assert reason is SkipReason.RATE_LIMITED_ACCOUNT

    def test_chat_limit_is_reported_first(self) -> None:
        reason = check_rate(self.LIMITS, ago(1, 2, 3), ago(1, 2, 3, 4, 5), NOW)
        assert reason is SkipReason.RATE_LIMITED_CHAT

    def test_window_slides(self) -> None:
        # exactly an hour old has left the window; a second younger has not
        assert check_rate(self.LIMITS, ago(1, 2, 60), [], NOW) is None
        assert check_rate(self.LIMITS, ago(1, 2, 59.99), [], NOW) is SkipReason.RATE_LIMITED_CHAT
        assert check_rate(self.LIMITS, ago(1, 2, 3), [], NOW + timedelta(minutes=57)) is None

    def test_scheduled_future_replies_count(self) -> None:
        future = [NOW + timedelta(minutes=m) for m in (1, 2, 3)]
        assert check_rate(self.LIMITS, future, [], NOW) is SkipReason.RATE_LIMITED_CHAT

    def test_zero_means_unlimited(self) -> None:
        limits = RateLimits(per_chat_per_hour=0, per_account_per_hour=0)
        assert check_rate(limits, ago(*range(100)), ago(*range(100)), NOW) is None

    def test_negative_limit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="per_chat_per_hour"):
            RateLimits(per_chat_per_hour=-1)

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            check_rate(self.LIMITS, [], [], datetime(2025, 1, 6))

    @given(
        chat=st.lists(st.integers(-30, 180), max_size=30),
        limit=st.integers(1, 10),
    )
    def test_limited_exactly_when_the_last_hour_is_full(self, chat: list[int], limit: int) -> None:
        times = ago(*chat)
        reason = check_rate(RateLimits(limit, 0), times, [], NOW)
        recent = sum(1 for m in chat if m < 60)
        assert replies_in_window(times, NOW) == recent
        assert (reason is SkipReason.RATE_LIMITED_CHAT) == (recent >= limit)


class TestDebounce:
    def test_single_message_waits_the_window(self) -> None:
        assert debounce_deadline(NOW, NOW, 20, 120) == NOW + timedelta(seconds=20)

    def test_each_message_resets_the_window(self) -> None:
        last = NOW + timedelta(seconds=15)
        assert debounce_deadline(NOW, last, 20, 120) == last + timedelta(seconds=20)

    def test_bounded_by_max_since_the_first(self) -> None:
        last = NOW + timedelta(seconds=110)
        assert debounce_deadline(NOW, last, 20, 120) == NOW + timedelta(seconds=120)

    def test_never_before_the_last_message(self) -> None:
        last = NOW + timedelta(seconds=300)
        assert debounce_deadline(NOW, last, 20, 120) == last

    def test_zero_window_is_immediate(self) -> None:
        assert debounce_deadline(NOW, NOW, 0, 0) == NOW

    @pytest.mark.parametrize(
        ("first", "last", "window", "cap", "error"),
        [
            (NOW, NOW, -1, 10, "must be >= 0"),
            (NOW, NOW, 1, -10, "must be >= 0"),
            (NOW, NOW - timedelta(seconds=1), 1, 10, "older than the first"),
            (datetime(2025, 1, 6), NOW, 1, 10, "timezone-aware"),
        ],
    )
    def test_invalid(
        self, first: datetime, last: datetime, window: float, cap: float, error: str
    ) -> None:
        with pytest.raises(ValueError, match=error):
            debounce_deadline(first, last, window, cap)

    @given(
        gap=st.floats(0, 1000),
        window=st.floats(0, 300),
        cap=st.floats(0, 600),
    )
    def test_bounds(self, gap: float, window: float, cap: float) -> None:
        last = NOW + timedelta(seconds=gap)
        deadline = debounce_deadline(NOW, last, window, cap)
        assert last <= deadline <= last + timedelta(seconds=window)
        assert deadline <= max(NOW + timedelta(seconds=cap), last)
