"""The admin app's sign-in (issue 19 §2): an admin key — or a one-time login link printed by
`twin app-link` — is exchanged for a browser session, so the app never keeps a token in the
browser's storage.

- The session's secret lives only in the browser's cookie (`HttpOnly`, `SameSite=Strict`,
  `Secure` unless the app is reached over plain HTTP on loopback; twin.api.views.app); the
  database keeps its SHA-256. It ends after `[api] session_idle_minutes` without a request, after
  `session_max_days` at the latest, on sign-out, on sign-out everywhere, and with the key it was
  made from (a stored key revoked or deleted, a configured token no longer configured).
- Every state-changing request of a session carries its CSRF token (`X-CSRF-Token`), which the
  app reads from `GET /app/session` and keeps in memory only; `SameSite=Strict` is the first
  wall, this the second (twin.api.auth).
- A login link is a random token, stored hashed, good once for `--minutes` (15).

Only an admin may sign in (the app is the admin's): a configured token, or a stored key with
the `admin` scope that is not bound to an account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.clock import Clock
from twin.ports import Store
from twin.services.keys import Principal, hash_key

__all__ = ["AppSessions", "NewSession", "SessionUser"]

CACHE_SECONDS = 5.0  # a session read serves the next requests this long
TOUCH_SECONDS = 60.0  # `last_seen_at` is written at most this often per session


@dataclass(frozen=True, slots=True)
class NewSession:
    secret: str  # the cookie's value: never stored
    csrf: str
    expires_at: datetime  # at the latest (idle expiry comes sooner without requests)


@dataclass(frozen=True, slots=True)
class SessionUser:
    principal: Principal
    csrf: str
    id_hash: str
    expires_at: datetime


class AppSessions:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        idle_minutes: float,
        max_days: float,
        tokens: frozenset[str],
    ) -> None:
        self._store = store
        self._clock = clock
        self._idle = timedelta(minutes=idle_minutes)
        self._max = timedelta(days=max_days)
        self._tokens = tokens  # the configured tokens' fingerprints (twin.api.auth)
        self._cache: dict[str, tuple[float, SessionUser | None]] = {}
        self._touched: dict[str, float] = {}

    async def sign_in(self, principal: Principal) -> NewSession:
        now = self._clock.now()
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = now + self._max
        await self._store.add_app_session(
            hash_key(secret),
            principal=principal.name,
            key_id=principal.key_id,
            csrf=csrf,
            at=now,
            expires_at=expires_at,
        )
        return NewSession(secret, csrf, expires_at)

    async def who(self, secret: str) -> SessionUser | None:
        """The signed-in admin of this cookie's secret; None for no (or an ended) session."""
        id_hash = hash_key(secret)
        now = self._clock.now()
        moment = now.timestamp()  # the one clock: a session's expiry and its cache agree
        cached = self._cache.get(id_hash)
        if cached is not None and 0 <= moment - cached[0] < CACHE_SECONDS:
            return cached[1]
        record = await self._store.app_session(id_hash)
        user = None
        if record is not None and self._valid(record.principal, record.revoked):
            if record.expires_at > now and record.last_seen_at + self._idle > now:
                principal = Principal(
                    name=f"session:{record.principal}",
                    scopes=frozenset({"admin"}),
                    key_id=record.key_id,
                )
                user = SessionUser(principal, record.csrf, id_hash, record.expires_at)
            else:
                await self._store.delete_app_sessions(id_hash)
        if len(self._cache) > 1000:
            self._cache.clear()
            self._touched.clear()
        self._cache[id_hash] = (moment, user)
        last_touch = self._touched.get(id_hash)
        if user is not None and (last_touch is None or moment - last_touch >= TOUCH_SECONDS):
            self._touched[id_hash] = moment
            await self._store.touch_app_session(id_hash, now)
        return user

    def _valid(self, principal: str, revoked: bool) -> bool:
        if revoked:
            return False
        if principal.startswith("token:"):  # still configured?
            return principal.removeprefix("token:") in self._tokens
        return True

    async def sign_out(self, id_hash: str) -> None:
        await self._store.delete_app_sessions(id_hash)
        self._forget()

    async def sign_out_everywhere(self) -> int:
        ended = await self._store.delete_app_sessions()
        self._forget()
        return ended

    def _forget(self) -> None:
        self._cache.clear()
        self._touched.clear()

    async def create_link(self, minutes: float) -> str:
        """A one-time login link's token (shown once; stored hashed)."""
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        await self._store.add_login_link(
            hash_key(token), at=now, expires_at=now + timedelta(minutes=minutes)
        )
        return token

    async def use_link(self, token: str) -> bool:
        return await self._store.take_login_link(hash_key(token), self._clock.now())
