"""The reconnect backoff: decorrelated jitter between `base` and a geometrically growing ceiling."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.backoff import Backoff


def test_first_wait_is_between_base_and_three_bases() -> None:
    policy = Backoff(base=1.0, cap=60.0)
    waits = [policy.next_delay(None, random.Random(seed)) for seed in range(200)]
    assert min(waits) >= 1.0 and max(waits) <= 3.0


def test_the_ceiling_grows_geometrically_up_to_the_cap() -> None:
    policy = Backoff(base=1.0, cap=60.0)
    assert [policy.ceiling(p) for p in (None, 1.0, 2.0, 10.0, 30.0)] == [3, 3, 6, 30, 60]


def test_waits_grow_over_an_outage_and_stop_at_the_cap() -> None:
    policy = Backoff(base=1.0, cap=60.0)
    runs = [policy.delays(12, random.Random(seed)) for seed in range(300)]
    means = [statistics.mean(run[i] for run in runs) for i in range(12)]
    assert means[0] < means[1] < means[2] < means[3] < means[4]  # growing, on average
    assert min(means[6:]) > 5 * means[0]  # then spread over [base, cap]: ~20 s for a 60 s cap
    assert max(max(run) for run in runs) <= 60.0


def test_seeded_rng_replays_the_same_waits() -> None:
    policy = Backoff(base=0.5, cap=20.0)
    assert policy.delays(8, random.Random(7)) == policy.delays(8, random.Random(7))


@given(
    base=st.floats(0.01, 10),
    factor=st.floats(1, 100),
    previous=st.none() | st.floats(0, 1000),
    seed=st.integers(0, 2**32),
)
def test_every_wait_is_within_base_and_ceiling(base, factor, previous, seed) -> None:
    policy = Backoff(base=base, cap=base * factor)
    wait = policy.next_delay(previous, random.Random(seed))
    assert base <= wait <= policy.ceiling(previous) <= policy.cap


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (-1, 1), (2, 1)])
def test_invalid_policy_is_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Backoff(base=base, cap=cap)
