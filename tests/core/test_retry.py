"""The one retry policy of provider calls (twin.retry): pure policy, parser and the loop."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import pytest

from twin.retry import RetryPolicy, Verdict, is_retryable_status, parse_retry_after, retrying

LOG = logging.getLogger("tests.retry")
TRANSIENT = Verdict(transient=True)


def test_backoff_is_full_jitter_growing_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=6, backoff_base=0.5, backoff_max=4.0)
    rng, expected = random.Random(1), random.Random(1)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        assert policy.delay(attempt, TRANSIENT, rng) == expected.uniform(0, ceiling)
    assert policy.delay(6, TRANSIENT, rng) is None


def test_retry_after_replaces_backoff_unless_too_long_and_permanent_is_never_retried() -> None:
    policy = RetryPolicy(max_retries=3, max_retry_after=30)
    rng = random.Random(0)
    assert policy.delay(0, Verdict(True, 7.5), rng) == 7.5
    assert policy.delay(0, Verdict(True, 31), rng) is None
    assert policy.delay(3, Verdict(True, 1), rng) is None
    assert policy.delay(0, Verdict(False), rng) is None


def test_parse_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 01 Jan 2025 12:00:10 GMT"}, now) == 10.0
    assert parse_retry_after({"Retry-After": "Wed, 01 Jan 2025 11:00:00 GMT"}, now) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(s) for s in (408, 409, 425, 429, 500, 503, 599))
    assert not any(is_retryable_status(s) for s in (None, 400, 401, 403, 404, 422))


class Flaky(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__("flaky")
        self.verdict = verdict


def _verdict(exc: BaseException) -> Verdict | None:
    return exc.verdict if isinstance(exc, Flaky) else None


async def _run(failures: list[BaseException], policy: RetryPolicy) -> tuple[str, int, list[float]]:
    calls, sleeps = 0, []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def call() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    result = await retrying(
        call,
        verdict=_verdict,
        policy=policy,
        what="test",
        log=LOG,
        sleep=sleep,
        rng=random.Random(2),
    )
    return result, calls, sleeps


async def test_transient_failures_are_retried_with_the_policys_waits(caplog) -> None:
    policy = RetryPolicy(max_retries=3, backoff_base=1.0)
    result, calls, sleeps = await _run([Flaky(Verdict(True, 4.0)), Flaky(TRANSIENT)], policy)
    expected = random.Random(2)
    assert (result, calls) == ("ok", 3)
    assert sleeps == [4.0, expected.uniform(0, 2.0)]
    assert [r.levelno for r in caplog.records if r.name == LOG.name] == [logging.WARNING] * 2


async def test_gives_up_after_max_retries_with_the_last_failure() -> None:
    last = Flaky(TRANSIENT)
    with pytest.raises(Flaky) as info:
        await _run([Flaky(TRANSIENT), Flaky(TRANSIENT), last], RetryPolicy(max_retries=2))
    assert info.value is last


async def test_permanent_failures_and_unknown_exceptions_propagate_at_once() -> None:
    for failure in (Flaky(Verdict(False)), KeyError("bug"), Flaky(Verdict(True, 999.0))):
        failures: list[BaseException] = [failure]
        with pytest.raises(type(failure)):
            await _run(failures, RetryPolicy(max_retries=5, max_retry_after=60))
        assert not failures  # called exactly once
