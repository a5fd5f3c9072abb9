"""The API's own rate limits: per API token on every authenticated request, and per account
and per client address on the login endpoints. Over a limit: 429 `rate_limited` in the one
error shape, with Retry-After (whole seconds).

Per token (`api.rate_limit_requests` per `api.rate_limit_seconds`, 0 = off): every request that
presented a valid token counts, whatever its answer; public endpoints (/health, /docs and its
assets) are not limited. Each response to such a request carries

    X-RateLimit-Limit      the requests allowed per window
    X-RateLimit-Remaining  how many are left after this one
    X-RateLimit-Reset      when the oldest request counted leaves the window, as Unix time in
                           seconds (GitHub's convention); Remaining grows again from then on

The token is known only by its fingerprint (`twin.api.auth.fingerprint`), never in clear text.

Login (`api.login_attempts` per `api.login_window_seconds`, 0 = off): /auth/request_code,
/auth/verify_code, /auth/password and the admin app's sign-in (POST /app/session) each count
their valid requests (the body passed validation) per account name and per client address; the
next one over either limit is refused before it reaches Telegram (or checks the key). A completed
login (status "authorized") clears the account's counts of the three Telegram ones, so the owner
is not locked out of the next login by the typos of this one; the address's counts stay. The
client address is the connection's, unless it is one of `api.trusted_proxies`: then it is the
right-most address in X-Forwarded-For that is not a
trusted proxy (the header is never believed from anyone else).

Windows are moving windows (`twin.domain.throttle`). One process keeps them in memory (a restart
forgets them); processes sharing a PostgreSQL keep them in its `rate_windows` table, so a client
spreading requests over the processes meets the same limits (`SharedWindows`, one short
transaction per counted request; while the database cannot be reached, each process counts in
its own memory rather than refuse or admit everything). A request one process forwarded to
another (twin.api.forwarding) is counted once, by the process that received it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from twin.api.auth import TOKEN_ID
from twin.api.errors import ApiError
from twin.api.forwarding import forwarded
from twin.api.metrics import ApiMetrics
from twin.api.middlewares import Handler, Middleware
from twin.config import ApiSettings
from twin.domain.throttle import MovingWindow, Quota, Verdict
from twin.errors import StorageUnavailable

LOGIN_SCOPES = ("request_code", "verify_code", "password", "app_session")
LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("twin_rate_limit_headers", dict)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger("twin.api.ratelimit")


Hit = tuple[str, Quota, Hashable]  # a limit's name, its quota, the key counted


class Windows(Protocol):
    """Where the windows are kept. `hit_all` counts one hit in each of several limits at
    once — all of them, or none when any is full (one atomic step); `reset` forgets a key's
    hits."""

    async def hit_all(self, hits: Sequence[Hit], now: float) -> list[Verdict]: ...

    async def reset(self, name: str, key: Hashable) -> None: ...


class LocalWindows:
    """In this process's memory (one process serves the database)."""

    def __init__(self) -> None:
        self._windows: dict[str, MovingWindow] = {}

    async def hit_all(self, hits: Sequence[Hit], now: float) -> list[Verdict]:
        windows = [self._window(name, quota) for name, quota, _ in hits]
        looks = [window.peek(key, now) for window, (_, _, key) in zip(windows, hits, strict=True)]
        if not all(look.allowed for look in looks):
            return looks
        return [window.hit(key, now) for window, (_, _, key) in zip(windows, hits, strict=True)]

    def _window(self, name: str, quota: Quota) -> MovingWindow:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = MovingWindow(quota)
        return window

    async def reset(self, name: str, key: Hashable) -> None:
        window = self._windows.get(name)
        if window is not None:
            window.reset(key)


class SharedWindows:
    """In the database every process shares (twin.db.repo.rate_windows); keys are stored as
    their SHA-256. While the database cannot be reached, `fallback` (this process's memory)
    counts instead. The cluster's chore sweeps the rows whose hits all left their window
    (twin.lifecycle_cluster.ClusterChores)."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.fallback = LocalWindows()
        self._down = False

    async def hit_all(self, hits: Sequence[Hit], now: float) -> list[Verdict]:
        stored = [(name, _digest(key), quota) for name, quota, key in hits]
        try:
            verdicts = await self.repo.rate_hits(stored, now)
        except (OSError, StorageUnavailable) as exc:
            if not self._down:
                self._down = True
                log.warning(
                    "rate limits counted in this process alone: the database is unreachable (%s)",
                    type(exc).__name__,
                )
            return await self.fallback.hit_all(hits, now)
        if self._down:
            self._down = False
            log.info("rate limits shared through the database again")
        return verdicts

    async def reset(self, name: str, key: Hashable) -> None:
        await self.fallback.reset(name, key)
        # the database out: its counts expire with their window
        with contextlib.suppress(OSError, StorageUnavailable):
            await self.repo.rate_reset(name, _digest(key))


def _digest(key: Hashable) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


class RateLimits:
    """The app's limits; `now` is the clock (Unix time), replaceable in tests; `windows` keeps
    the counts (this process's memory until `share` hands them to the database)."""

    def __init__(
        self,
        settings: ApiSettings,
        metrics: ApiMetrics,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.now = now
        self.metrics = metrics
        self.windows: Windows = LocalWindows()
        self.requests = Quota(settings.rate_limit_requests, settings.rate_limit_seconds)
        self.login = Quota(settings.login_attempts, settings.login_window_seconds)
        # The business API's limits (`count_group`): per user, per chat, per key.
        self.groups = {
            "conversation": Quota(settings.conversation_per_minute, 60.0),
            "messaging": Quota(settings.messaging_per_minute, 60.0),
            "analytics": Quota(settings.analytics_per_minute, 60.0),
        }
        self.trusted_proxies: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in settings.trusted_proxies
        )

    def share(self, repo: Any) -> None:
        """Other processes serve the same database: count in it from now on."""
        self.windows = SharedWindows(repo)

    async def count_request(self, request: web.Request) -> None:
        """Count a request with a valid token; 429 when the token's window is full."""
        token = request.get(TOKEN_ID)
        if token is None or self.requests.unlimited or forwarded(request):
            return  # (a forwarded request was counted by the process that received it)
        now = self.now()
        [verdict] = await self.windows.hit_all([("token", self.requests, token)], now)
        request[_HEADERS] = {
            "X-RateLimit-Limit": str(verdict.limit),
            "X-RateLimit-Remaining": str(verdict.remaining),
            "X-RateLimit-Reset": str(math.ceil(now + verdict.reset_after)),
        }
        if not verdict.allowed:
            self._refuse(
                "token",
                verdict,
                f"Too many requests with this API token: at most {self.requests.limit} per "
                f"{_seconds(self.requests.window)}.",
            )

    async def count_group(self, request: web.Request, group: str, key: Hashable, what: str) -> None:
        """Count a request of a business API `group` for `key` (a user, a chat, a key); 429
        when its window is full. The response's X-RateLimit headers show whichever limit,
        the token's or this one, has fewer requests left."""
        quota = self.groups[group]
        if quota.unlimited or forwarded(request):
            return
        now = self.now()
        [verdict] = await self.windows.hit_all([(group, quota, key)], now)
        current = request.get(_HEADERS)
        if current is None or verdict.remaining < int(current["X-RateLimit-Remaining"]):
            request[_HEADERS] = {
                "X-RateLimit-Limit": str(verdict.limit),
                "X-RateLimit-Remaining": str(verdict.remaining),
                "X-RateLimit-Reset": str(math.ceil(now + verdict.reset_after)),
            }
        if not verdict.allowed:
            self._refuse(
                group,
                verdict,
                f"Too many {group} requests for this {what}: at most {quota.limit} per minute.",
            )

    async def login_attempt(self, request: web.Request, scope: str, account: str) -> LoginAttempt:
        """Count one attempt at login endpoint `scope` for `account` from the request's client;
        429 (counting nothing) when the account or the address has no attempt left."""
        if scope not in LOGIN_SCOPES:
            raise ValueError(f"unknown login scope {scope!r}")
        attempt = LoginAttempt(self, scope, account)
        if self.login.unlimited or forwarded(request):
            return attempt
        now = self.now()
        address = client_address(request, self.trusted_proxies)
        quota = self.login
        # Both counted in one step, or neither: concurrent attempts (on any process) cannot
        # all pass a look before any of them is counted.
        by_account, by_address = await self.windows.hit_all(
            [
                ("login_account", quota, (scope, account)),
                ("login_address", quota, (scope, address)),
            ],
            now,
        )
        window = f"at most {quota.limit} per {_seconds(quota.window)}"
        if not by_account.allowed:
            self._refuse(
                "login_account",
                by_account,
                f"Too many login attempts for account '{account}' ({window}).",
            )
        if not by_address.allowed:
            self._refuse(
                "login_address",
                by_address,
                f"Too many login attempts from this address ({window}).",
            )
        return attempt

    async def login_succeeded(self, account: str) -> None:
        for scope in LOGIN_SCOPES:
            await self.windows.reset("login_account", (scope, account))

    def _refuse(self, limit: str, verdict: Verdict, message: str) -> None:
        self.metrics.rate_limited.labels(limit).inc()
        retry_after = max(1, math.ceil(verdict.retry_after))
        raise ApiError(
            429,
            f"{message} Retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


@dataclass(frozen=True)
class LoginAttempt:
    limits: RateLimits
    scope: str
    account: str

    async def succeeded(self) -> None:
        """The login completed: the account's attempts no longer count."""
        await self.limits.login_succeeded(self.account)


RATE_LIMITS = web.AppKey("twin_rate_limits", RateLimits)


async def login_attempt(request: web.Request, scope: str, account: str) -> LoginAttempt:
    """For the login views: count this attempt, or answer 429 (see the module docstring)."""
    return await request.app[RATE_LIMITS].login_attempt(request, scope, account)


async def count_group(request: web.Request, group: str, key: Hashable, what: str) -> None:
    """For the business API's views: count this request in `group` for `key`, or 429."""
    await request.app[RATE_LIMITS].count_group(request, group, key, what)


def client_address(request: web.BaseRequest, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, or behind a trusted proxy the right-most address of
    X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.remote or "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _seconds(window: float) -> str:
    return f"{window:g} s"


def rate_limit_middleware(limits: RateLimits) -> Middleware:
    """Per-token limit; must run after the auth middleware (which names the token)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        await limits.count_request(request)
        return await handler(request)

    return middleware


async def on_response_prepare(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """The X-RateLimit-* headers on every response to a counted request (errors, streams too)."""
    for name, value in request.get(_HEADERS, {}).items():
        response.headers[name] = value
