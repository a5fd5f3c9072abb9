"""Named API keys with scopes: created (shown once), listed, revoked, and who a request is.

A key is `twin_` + 43 URL-safe characters (256 random bits); only its SHA-256 is stored (a
fast hash is right for a random key of that size), with a 12-character prefix to recognise
it by. Scopes: `admin` (everything), `chat` (the HTTP chat API), `webhook:talkme` (the TalkMe
webhook). A key may be bound to an account (it sees nothing of another: 404) and to a twin.
The `[api] tokens` of the configuration are admin keys that are not stored.

Checking a key must not cost a database round trip on every request: who a key is stays cached
in this process for `CACHE_SECONDS` (a revocation made here takes effect at once; one made by
another process within that time), and `last_used_at` is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.db.records import ApiKeyRecord
from twin.domain.scopes import SCOPES
from twin.errors import InvalidSettings
from twin.ports import Clock, Store
from twin.services.events import EventLog

CACHE_SECONDS = 15.0
CACHE_LIMIT = 10_000  # cached keys per process (known keys are kept before unknown ones)
USED_EVERY = timedelta(minutes=1)
PREFIX_CHARS = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: a configured token (admin) or a stored key."""

    name: str
    scopes: frozenset[str]
    account: str | None = None  # bound to this account: nothing of another is visible
    twin: str | None = None
    key_id: int | None = None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def sees(self, account: str) -> bool:
        return self.account is None or self.account == account


@dataclass(frozen=True, slots=True)
class Created:
    record: ApiKeyRecord
    key: str  # the secret itself: shown once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class ApiKeys:
    def __init__(self, store: Store, events: EventLog, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}  # hash -> (until, who)
        self._used: dict[int, datetime] = {}

    async def create(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        account: str | None = None,
        twin: str | None = None,
    ) -> Created:
        problems = check_key(name, scopes)
        if problems:
            raise InvalidSettings(problems, "The API key is not valid.")
        account_id = None
        if account is not None:
            account_id = (await self._store.get_account(account)).id  # NotFound: 404
        key = "twin_" + secrets.token_urlsafe(32)
        record = await self._store.create_key(
            name,
            prefix=key[:PREFIX_CHARS],
            hash=hash_key(key),
            scopes=sorted(set(scopes)),
            account_id=account_id,
            twin=twin,
        )
        await self._events.emit(
            "key.created",
            {
                "name": name,
                "prefix": record.prefix,
                "scopes": record.scopes,
                "account": account,
                "twin": twin,
            },
        )
        return Created(record, key)

    async def list(self) -> list[ApiKeyRecord]:
        return await self._store.list_keys()

    async def revoke(self, name: str) -> ApiKeyRecord:
        record = await self._store.revoke_key(name, self._clock.now())  # NotFound: 404
        self._cache.pop(record.hash, None)
        await self._events.emit("key.revoked", {"name": name, "prefix": record.prefix})
        return record

    async def who(self, key: str, monotonic: float) -> Principal | None:
        """The stored key's principal (None: unknown or revoked), cached for CACHE_SECONDS."""
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > monotonic:
            principal = cached[1]
        else:
            record = await self._store.key_by_hash(digest)
            principal = None
            if record is not None and record.revoked_at is None:
                principal = Principal(
                    name=record.name,
                    scopes=frozenset(record.scopes),
                    account=record.account,
                    twin=record.twin,
                    key_id=record.id,
                )
            self._remember(digest, principal, monotonic)
        if principal is not None and principal.key_id is not None:
            await self._mark_used(principal.key_id)
        return principal

    def _remember(self, digest: str, principal: Principal | None, monotonic: float) -> None:
        """Cache who a key is. Unknown keys are cached too (a client retrying a revoked key
        costs no round trip either), but never at the expense of real ones: past CACHE_LIMIT
        entries the expired ones go, then the unknown ones, so a flood of made-up keys cannot
        push the hot keys out."""
        if len(self._cache) >= CACHE_LIMIT:
            self._cache = {d: e for d, e in self._cache.items() if e[0] > monotonic}
        if len(self._cache) >= CACHE_LIMIT:
            self._cache = {d: e for d, e in self._cache.items() if e[1] is not None}
        if len(self._cache) >= CACHE_LIMIT and principal is None:
            return
        self._cache[digest] = (monotonic + CACHE_SECONDS, principal)

    async def _mark_used(self, key_id: int) -> None:
        now = self._clock.now()
        last = self._used.get(key_id)
        if last is not None and now - last < USED_EVERY:
            return
        self._used[key_id] = now
        await self._store.key_used(key_id, now)


def check_key(name: str, scopes: Collection[str]) -> list[tuple[str, str]]:
    problems = []
    if not _NAME.match(name):
        problems.append(("name", "1-64 letters, digits, '_', '.', '-'; not starting with '_.-'"))
    if not scopes:
        problems.append(("scopes", "at least one scope"))
    for scope in scopes:
        if scope not in SCOPES:
            problems.append(("scopes", f"unknown scope '{scope}': one of {', '.join(SCOPES)}"))
    return problems
