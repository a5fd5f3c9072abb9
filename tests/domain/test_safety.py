"""The safety governor's pure decisions: token buckets, the daily budget, first contacts, flood
waits honoured in full and the trip to draft/off (twin.domain.safety)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.safety import (
    DAY,
    HOUR,
    AccountMode,
    Bucket,
    CallCategory,
    SafetyLedger,
    SafetyLimits,
)

SEND = CallCategory.SEND


def ledger(**limits) -> SafetyLedger:
    buckets = limits.pop("buckets", {SEND: Bucket(per_hour=360, burst=3)})  # one per 10 s
    return SafetyLedger(SafetyLimits(buckets=buckets, **limits))


def test_a_burst_goes_at_once_then_calls_queue_at_the_bucket_rate():
    governor = ledger(daily_sends=0, max_wait=60.0)
    waits = [governor.admit(SEND, 100.0).wait for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(10.0), pytest.approx(20.0)]
    # the bucket refills with time: 30 s later three tokens are saved again
    assert governor.admit(SEND, 100.0 + 50).wait == 0.0


def test_a_wait_longer_than_max_wait_is_refused_with_retry_after_and_not_counted():
    governor = ledger(daily_sends=0, max_wait=15.0)
    for _ in range(4):  # burst 3 + one waiting 10 s
        assert governor.admit(SEND, 0.0).allowed
    refused = governor.admit(SEND, 0.0)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(20.0)
    assert "send calls over 360/h" in refused.reason
    assert governor.snapshot(0.0).calls[SEND].last_hour == 4


def test_uncategorised_calls_are_counted_and_never_throttled():
    governor = ledger()
    assert all(governor.admit(CallCategory.OTHER, 0.0).wait == 0 for _ in range(1000))
    assert governor.snapshot(1.0).calls[CallCategory.OTHER].last_hour == 1000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), min_size=1, max_size=60))
def test_no_sequence_of_calls_goes_faster_than_the_bucket(times):
    """Whatever the arrival times, the calls' start times (arrival + wait) never put more than
    burst + rate x span calls into any span."""
    bucket = Bucket(per_hour=360, burst=3)
    governor = ledger(daily_sends=0, buckets={SEND: bucket}, max_wait=math.inf)
    starts = sorted(t + governor.admit(SEND, t).wait for t in sorted(times))
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            span = starts[j] - first
            assert j - i + 1 <= bucket.burst + span / bucket.interval + 1e-6


def test_the_daily_budget_is_a_moving_24_hours_and_notes_to_self_are_free():
    governor = ledger(daily_sends=3, buckets={})
    for t in (0.0, 10.0, 20.0):
        assert governor.admit(SEND, t).allowed
    refused = governor.admit(SEND, 30.0)
    assert not refused.allowed and refused.retry_after == pytest.approx(DAY - 30.0)
    assert "daily send budget reached (3 of 3 in 24 h)" in refused.reason
    assert governor.admit(SEND, 30.0, to_self=True).allowed  # the governor's own note
    assert governor.admit(SEND, DAY + 1.0).allowed  # the first send left the window
    assert not governor.admit(SEND, DAY + 2.0).allowed


def test_a_restart_keeps_the_sends_of_the_last_24_hours():
    governor = ledger(daily_sends=2, buckets={})
    governor.seed_sends([5.0, 1.0])
    assert not governor.admit(SEND, 100.0).allowed
    assert governor.snapshot(100.0).sends_last_day == 2


def test_first_contacts_have_their_own_small_budget():
    governor = ledger(first_contacts_daily=2)
    assert governor.admit_first_contact(0.0).allowed
    assert governor.admit_first_contact(1.0).allowed
    refused = governor.admit_first_contact(2.0)
    assert not refused.allowed and "first-contact budget reached (2 of 2" in refused.reason
    assert governor.admit_first_contact(DAY + 0.5).allowed
    assert ledger(first_contacts_daily=0).admit_first_contact(0.0).allowed is False


def test_a_flood_wait_blocks_its_category_in_full():
    governor = ledger(daily_sends=0, max_wait=60.0)
    assert governor.record_flood_wait(SEND, 30, 1000.0) is None
    short = governor.admit(SEND, 1010.0)
    assert short.allowed and short.wait == pytest.approx(20.0)  # sat out, not skipped
    governor.record_flood_wait(SEND, 300, 2000.0)
    long = governor.admit(SEND, 2000.0)
    assert not long.allowed and long.retry_after == pytest.approx(300.0)
    assert "FLOOD_WAIT" in long.reason
    assert governor.admit(CallCategory.HISTORY, 2000.0).wait == 0.0  # other categories go
    assert governor.admit(SEND, 2000.0, to_self=True).allowed is False  # even notes wait


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 500, allow_nan=False), st.integers(1, 120)), min_size=1, max_size=8
    ),
    st.lists(st.floats(0, 800, allow_nan=False), min_size=1, max_size=30),
)
def test_no_call_reaches_telegram_before_a_flood_wait_is_over(waits, calls):
    governor = ledger(daily_sends=0, buckets={}, max_wait=math.inf, flood_waits_per_hour=0)
    events = sorted([(t, "wait", s) for t, s in waits] + [(t, "call", 0) for t in calls])
    blocked_until = -math.inf
    for t, kind, seconds in events:
        if kind == "wait":
            governor.record_flood_wait(SEND, seconds, t)
            blocked_until = max(blocked_until, t + seconds)
        else:
            admission = governor.admit(SEND, t)
            assert admission.allowed
            assert t + admission.wait >= blocked_until - 1e-9


def test_k_flood_waits_in_an_hour_trip_the_governor():
    governor = ledger(flood_waits_per_hour=3, on_trip=AccountMode.OFF)
    assert governor.record_flood_wait(SEND, 5, 0.0) is None
    assert governor.record_flood_wait(SEND, 5, HOUR + 1) is None  # the first left the hour
    assert governor.record_flood_wait(CallCategory.RESOLVE, 7, HOUR + 2) is None
    trip = governor.record_flood_wait(SEND, 9, HOUR + 3)
    assert trip is not None and trip.mode is AccountMode.OFF
    assert "3 flood waits from Telegram in the last hour (limit 3)" in trip.reason
    snapshot = governor.snapshot(HOUR + 4)
    assert snapshot.flood_waits_last_hour == 3 and snapshot.flood_waits_last_day == 4
    assert snapshot.flood_wait_seconds_last_day == 26


def test_a_spam_limit_trips_at_once():
    trip = ledger().record_spam_limit("PEER_FLOOD", 0.0)
    assert trip.mode is AccountMode.DRAFT
    assert "PEER_FLOOD" in trip.reason


def test_limits_are_checked():
    with pytest.raises(ValueError, match="per_hour"):
        Bucket(per_hour=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        Bucket(per_hour=1, burst=0)
    with pytest.raises(ValueError, match="on_trip"):
        SafetyLimits(on_trip=AccountMode.ACTIVE)
