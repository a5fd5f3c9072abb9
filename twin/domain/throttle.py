"""Request throttling: at most `limit` hits per key in any `window` seconds (a moving window).

Pure and clock-free: every call takes `now` (seconds on any monotonic-enough scale; the API
passes Unix time so that a reset can be told to clients as a timestamp). The HTTP API uses one
window per API token and, for the login endpoints, one per account name and one per client
address (see `twin.api.ratelimit`).

A moving window is exact where a fixed one is not: "5 attempts per 15 minutes" never lets 10
through around a window boundary. Each key keeps the times of its last `limit` hits at most, so
memory is bounded per key; keys idle for a whole window are dropped by a sweep that runs at most
once per window. `window_hit` is the same window over a plain list of hit times, for a store
shared by several processes (twin.db.repo.rate_windows).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quota:
    """`limit` hits per `window` seconds; a limit of 0 means no limit."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"a rate limit must be >= 0, got {self.limit}")
        if self.window <= 0:
            raise ValueError(f"a rate limit window must be > 0 seconds, got {self.window}")

    @property
    def unlimited(self) -> bool:
        return self.limit == 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one hit (or a look without hitting)."""

    allowed: bool
    limit: int
    remaining: int  # hits still allowed in the window, after this one
    reset_after: float  # seconds until the oldest counted hit leaves the window (0: none)

    @property
    def retry_after(self) -> float:
        """Seconds to wait before a refused hit would be allowed (0 when allowed)."""
        return 0.0 if self.allowed else self.reset_after


class MovingWindow:
    """At most `quota.limit` hits per key in any `quota.window` seconds."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._hits: dict[Hashable, deque[float]] = {}
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        """Keys currently tracked (for tests and metrics)."""
        return len(self._hits)

    def hit(self, key: Hashable, now: float) -> Verdict:
        """Count a hit for `key` if the quota allows it; a refused hit is not counted."""
        self._sweep(now)
        if self.quota.unlimited:
            return Verdict(True, 0, 0, 0.0)
        hits = self._current(key, now)
        if len(hits) >= self.quota.limit:
            return self._verdict(hits, now, allowed=False)
        hits.append(now)
        self._hits[key] = hits
        return self._verdict(hits, now, allowed=True)

    def peek(self, key: Hashable, now: float) -> Verdict:
        """Whether a hit would be allowed now, without counting one."""
        if self.quota.unlimited:
            return Verdict(True, 0, 0, 0.0)
        hits = self._current(key, now)
        return self._verdict(hits, now, allowed=len(hits) < self.quota.limit)

    def reset(self, key: Hashable) -> None:
        """Forget every hit of `key` (e.g. after a successful login)."""
        self._hits.pop(key, None)

    def _current(self, key: Hashable, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque(maxlen=self.quota.limit)
        since = now - self.quota.window
        while hits and hits[0] <= since:
            hits.popleft()
        return hits

    def _verdict(self, hits: deque[float], now: float, *, allowed: bool) -> Verdict:
        return _verdict(self.quota, hits, now, allowed=allowed)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.quota.window
        since = now - self.quota.window
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= since]:
            del self._hits[key]


def window_hit(
    quota: Quota, hits: Sequence[float], now: float, *, count: bool = True
) -> tuple[list[float], Verdict]:
    """One hit (`count`) or a look at one key whose hit times are `hits`, oldest first: the
    times still in the window afterwards and the verdict, exactly as `MovingWindow` would
    answer. A refused hit is not counted."""
    if quota.unlimited:
        return [], Verdict(True, 0, 0, 0.0)
    since = now - quota.window
    current = [at for at in hits if at > since][-quota.limit :]
    allowed = len(current) < quota.limit
    if allowed and count:
        current.append(now)
    return current, _verdict(quota, current, now, allowed=allowed)


def _verdict(quota: Quota, hits: Sequence[float], now: float, *, allowed: bool) -> Verdict:
    reset_after = max(0.0, hits[0] + quota.window - now) if hits else 0.0
    remaining = max(0, quota.limit - len(hits))
    return Verdict(allowed, quota.limit, remaining, reset_after)
