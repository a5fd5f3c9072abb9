"""The one retry policy of the provider calls (LLM, speech-to-text, text-to-speech).

The SDKs' own retries are switched off (`max_retries=0`) so that this is the only loop. It is
tenacity's (`AsyncRetrying`) with twin's rule:

* the adapter says what a failure is (`Verdict`): *transient* (timeout, connection error,
  408/409/429/5xx) or not, and the provider's Retry-After when it sent one; an exception the
  adapter does not recognise (`None`) is a bug and propagates at once, untouched;
* a transient failure is retried up to `max_retries` times, waiting the provider's Retry-After
  when it sent one, else full jitter ``uniform(0, min(backoff_max, backoff_base · 2**attempt))``
  (AWS, "Exponential Backoff And Jitter"); a Retry-After longer than `max_retry_after` is not
  waited out here: the caller gets the failure at once and can reschedule the whole job;
* a permanent failure is never retried (it does not pass through the wait at all).

What a call does after giving up (fall back to another provider, raise `SpeechUnavailable`) is
the caller's. `sleep` and `rng` are injectable: tests neither wait nor depend on chance.

The durable retry of a reply job (its `max_attempts`, outage re-queue) is the pipeline's, one
level up: this loop only smooths over blips within one attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]

# HTTP statuses worth retrying: timeouts, conflicts, throttling, server errors.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


@dataclass(frozen=True, slots=True)
class Verdict:
    """An adapter's reading of one failed attempt."""

    transient: bool
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter wait before retry number `attempt + 1` (`attempt` 0-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return rng.uniform(0.0, ceiling)

    def delay(self, attempt: int, verdict: Verdict, rng: random.Random) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up now."""
        if not verdict.transient or attempt >= self.max_retries:
            return None
        if verdict.retry_after is not None:
            retry_after = max(0.0, verdict.retry_after)
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt, rng)


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    verdict: Callable[[BaseException], Verdict | None],
    policy: RetryPolicy,
    what: str,
    log: logging.Logger,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `call` under `policy`; the last failure propagates when it gives up."""
    rng = rng or random.Random()  # jitter, not cryptography
    delays: dict[int, float] = {}

    def should_retry(state: RetryCallState) -> bool:
        assert state.outcome is not None
        exc = state.outcome.exception()
        if exc is None:
            return False
        seen = verdict(exc)
        if seen is None:
            return False
        wait = policy.delay(state.attempt_number - 1, seen, rng)
        if wait is None:
            return False
        delays[state.attempt_number] = wait
        return True

    def wait(state: RetryCallState) -> float:
        return delays.pop(state.attempt_number)

    def before_sleep(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        log.warning(
            "%s failed (%s); retry %d/%d in %.2fs",
            what,
            state.outcome.exception(),
            state.attempt_number,
            policy.max_retries,
            state.next_action.sleep,
        )

    async def attempt() -> T:  # a coroutine function: tenacity runs anything else as sync code
        return await call()

    controller = AsyncRetrying(
        retry=should_retry, wait=wait, sleep=sleep, before_sleep=before_sleep, reraise=True
    )
    return await controller(attempt)


def parse_retry_after(
    headers: Mapping[str, str] | None, now: datetime | None = None
) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI), or `retry-after` as seconds or an HTTP date
    (RFC 9110 §10.2.3); None when absent or unreadable."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
