from __future__ import annotations

import pytest

from twin.retry import RetryPolicy
from twin.voice.errors import SpeechUnavailable
from twin.voice.retry import Failure, call_with_retries


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
