"""The moving-window throttle: pure, given `now`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.throttle import MovingWindow, Quota


def test_counts_down_then_refuses_without_counting() -> None:
    window = MovingWindow(Quota(3, 60.0))
    verdicts = [window.hit("k", 100.0 + i) for i in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, True]
    assert [v.remaining for v in verdicts] == [2, 1, 0]
    assert all(v.limit == 3 for v in verdicts)
    assert verdicts[0].reset_after == 60.0  # the first hit leaves the window at 160
    refused = window.hit("k", 110.0)
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after == 50.0  # 100 + 60 - 110
    assert window.peek("k", 110.0) == refused  # the refused hit was not counted


def test_the_window_moves() -> None:
    window = MovingWindow(Quota(2, 10.0))
    window.hit("k", 0.0)
    window.hit("k", 5.0)
    assert not window.hit("k", 9.9).allowed
    later = window.hit("k", 10.0)  # the hit at 0 has left the window
    assert later.allowed and later.remaining == 0
    assert later.reset_after == 5.0  # the hit at 5 leaves at 15
    assert not window.hit("k", 14.9).allowed
    assert window.hit("k", 15.0).allowed


def test_never_more_than_the_limit_in_any_window() -> None:
    # A fixed window would let 2 × limit through around its boundary; a moving one never does.
    window = MovingWindow(Quota(5, 900.0))
    allowed = [t for t in range(0, 3600, 30) if window.hit("k", float(t)).allowed]
    for start in allowed:
        assert sum(1 for t in allowed if start <= t < start + 900) <= 5


def test_keys_are_independent_and_reset() -> None:
    window = MovingWindow(Quota(1, 60.0))
    assert window.hit("a", 0.0).allowed
    assert window.hit("b", 0.0).allowed
    assert not window.hit("a", 1.0).allowed
    window.reset("a")
    assert window.hit("a", 1.0).allowed
    assert not window.hit("b", 1.0).allowed


def test_zero_means_no_limit() -> None:
    window = MovingWindow(Quota(0, 60.0))
    assert all(window.hit("k", 0.0).allowed for _ in range(1000))
    assert len(window) == 0


def test_idle_keys_are_swept_once_per_window() -> None:
    window = MovingWindow(Quota(2, 60.0))
    for key in range(100):
        window.hit(key, 0.0)
    assert len(window) == 100
    window.hit("late", 59.0)  # within the first window: no sweep yet
    assert len(window) == 101
    window.hit("later", 61.0)  # a window later: the keys idle since 0 are gone
    assert len(window) == 2


@pytest.mark.parametrize(("limit", "seconds"), [(-1, 60.0), (5, 0.0), (5, -1.0)])
def test_bad_quotas_are_refused(limit: int, seconds: float) -> None:
    with pytest.raises(ValueError):
        Quota(limit, seconds)


@given(
    limit=st.integers(1, 5),
    window=st.floats(1.0, 100.0),
    gaps=st.lists(st.floats(0.0, 50.0), max_size=40),
)
def test_allowed_hits_match_a_naive_count(limit: int, window: float, gaps: list[float]) -> None:
    throttle = MovingWindow(Quota(limit, window))
    now, counted = 0.0, []
    for gap in gaps:
        now += gap
        recent = [t for t in counted if t > now - window]
        verdict = throttle.hit("k", now)
        assert verdict.allowed == (len(recent) < limit)
        if verdict.allowed:
            counted.append(now)
            recent.append(now)
        assert verdict.remaining == limit - len(recent)
