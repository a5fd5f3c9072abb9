from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from twin.voice.errors import SpeechUnavailable
from twin.voice.retry import Failure, RetryPolicy, call_with_retries, parse_retry_after


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_retries=6, backoff_base=0.5, backoff_max=4.0)
    rng = random.Random(1)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        for _ in range(50):
            delay = policy.delay(attempt, None, rng)
            assert delay is not None
            assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(6, None, rng) is None


def test_retry_after_replaces_backoff_unless_too_long() -> None:
    policy = RetryPolicy(max_retries=3, max_retry_after=30)
    rng = random.Random(0)
    assert policy.delay(0, 7.5, rng) == 7.5
    assert policy.delay(0, 31, rng) is None
    assert policy.delay(3, 1, rng) is None


def test_parse_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 01 Jan 2025 12:00:10 GMT"}, now) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


class Boom(Exception):
    pass


async def test_loop_retries_transient_and_gives_up_with_speech_unavailable() -> None:
    calls = 0
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise Boom

    with pytest.raises(SpeechUnavailable) as info:
        await call_with_retries(
            call,
            classify=lambda exc: Failure("boom", status=503, retry_after=2.0),
            policy=RetryPolicy(max_retries=2),
            what="test",
            sleep=sleep,
        )
    assert calls == 3
    assert sleeps == [2.0, 2.0]
    assert info.value.retry_after == 2.0
    assert info.value.status == 503
    assert isinstance(info.value.__cause__, Boom)


async def test_loop_reraises_what_it_does_not_classify() -> None:
    async def call() -> str:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await call_with_retries(call, classify=lambda exc: None, policy=RetryPolicy(), what="test")
