"""Retries for the speech providers: a pure backoff policy and one small async loop.

The SDKs' own retries are switched off (`max_retries=0`) so that this loop is the only one: it
honours Retry-After, adds jitter, sleeps through an injectable `sleep` (tests pass a recorder and
never wait), and ends in `SpeechUnavailable(retry_after=…)`.
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

from twin.voice.errors import SpeechUnavailable

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger("twin.voice")

# HTTP statuses worth retrying: timeouts, conflicts, throttling, server errors.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass(frozen=True, slots=True)
class Failure:
    """An adapter's verdict on one failed attempt (built from the vendor exception)."""

    message: str
    status: int | None = None
    retry_after: float | None = None
    transient: bool = True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": attempt k waits uniform(d/2, d),
    d = min(backoff_max, backoff_base · 2**k). A Retry-After from the provider replaces the
    computed delay; one longer than `max_retry_after` is not waited for here — the caller gets
    SpeechUnavailable(retry_after) at once and can reschedule the whole job instead."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up now."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return max(0.0, retry_after) if retry_after <= self.max_retry_after else None
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds from `retry-after-ms`, `retry-after` (seconds or an HTTP date), else None."""
    lowered = {k.lower(): v for k, v in headers.items()}
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
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            wait = policy.delay(attempt, failure.retry_after, rng) if failure.transient else None
            if wait is None:
                raise SpeechUnavailable(
                    f"{what}: {failure.message} (after {attempt + 1} attempt(s))",
                    retry_after=failure.retry_after,
                    transient=failure.transient,
                    status=failure.status,
                ) from exc
            log.warning(
                "%s failed (%s); retry %d/%d in %.2fs",
                what,
                failure.message,
                attempt + 1,
                policy.max_retries,
                wait,
            )
            await sleep(wait)
            attempt += 1
