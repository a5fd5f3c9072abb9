"""Exponential backoff with decorrelated jitter: how long to wait before the next reconnect.

Pure: the caller passes the previous delay and a `random.Random`. "Decorrelated jitter" (AWS
Architecture Blog, "Exponential Backoff And Jitter") draws each wait from
``uniform(base, 3 · previous)``, capped: the ceiling grows geometrically while the draws stay
spread out, so many clients cut off by one outage do not reconnect in lockstep, and no wait is
ever shorter than `base` (a refused server is never hammered).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0  # seconds: the shortest wait, and the first wait's lower bound
    cap: float = 60.0  # seconds: no wait is longer

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("backoff needs 0 < base <= cap")

    def ceiling(self, previous: float | None) -> float:
        """The longest wait that may follow `previous` (None: the first wait)."""
        return min(self.cap, 3 * max(self.base, previous or self.base))

    def next_delay(self, previous: float | None, rng: random.Random) -> float:
        """The wait after `previous` (None before the first retry), within [base, ceiling]."""
        return min(self.cap, rng.uniform(self.base, self.ceiling(previous)))

    def delays(self, count: int, rng: random.Random) -> list[float]:
        """`count` successive waits, as one outage would use them."""
        result: list[float] = []
        previous: float | None = None
        for _ in range(count):
            previous = self.next_delay(previous, rng)
            result.append(previous)
        return result
