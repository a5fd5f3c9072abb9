"""The speech providers' calls under the one retry policy (twin.retry), ending in
`SpeechUnavailable(retry_after=…)` when it gives up."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from twin.retry import RetryPolicy, Sleep, Verdict, retrying
from twin.voice.errors import SpeechUnavailable

T = TypeVar("T")

log = logging.getLogger("twin.voice")


@dataclass(frozen=True, slots=True)
class Failure:
    """An adapter's verdict on one failed attempt (built from the vendor exception)."""

    message: str
    status: int | None = None
    retry_after: float | None = None
    transient: bool = True


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    classify: Callable[[BaseException], Failure | None],
    policy: RetryPolicy,
    what: str,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `call` until it succeeds. `classify` maps a vendor exception to a Failure (None =
    not a provider failure: re-raised untouched). Non-transient failures are not retried."""
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return await call()

    def verdict(exc: BaseException) -> Verdict | None:
        failure = classify(exc)
        return None if failure is None else Verdict(failure.transient, failure.retry_after)

    try:
        return await retrying(
            attempt, verdict=verdict, policy=policy, what=what, log=log, sleep=sleep, rng=rng
        )
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        raise SpeechUnavailable(
            f"{what}: {failure.message} (after {attempts} attempt(s))",
            retry_after=failure.retry_after,
            transient=failure.transient,
            status=failure.status,
        ) from exc
