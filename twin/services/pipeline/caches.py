"""What the pipeline keeps between messages: the merged behaviour per settings document, and
the parsed style profile per stored version. Not needed for correctness: every step reads the
stored overrides and the profile's version in a transaction it makes anyway, and rebuilds what
changed (pydantic validation, working hours and parsing are too costly to redo per message)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from twin.config import Settings
from twin.db.records import ChatRecord, StyleProfileRecord
from twin.domain.conversation import StyleProfile
from twin.domain.decide import AccountPolicy
from twin.ports import Store
from twin.services.policy import Behaviour, account_policy, behaviour_of
from twin.services.style import accumulator_of

log = logging.getLogger("twin.pipeline")

BEHAVIOUR_CACHE = 256  # distinct per-chat override documents kept per account

# (style profile version, the profile record if the reader did not know that version yet)
StyleRead = tuple[datetime | None, StyleProfileRecord | None]


class Behaviours:
    """config.toml + the account's stored overrides + the chat's: (Behaviour, AccountPolicy)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Per account: the stored overrides they were built from, and per chat-override
        # document the merged Behaviour and its AccountPolicy.
        self._cache: dict[
            int, tuple[dict[str, Any], dict[str, tuple[Behaviour, AccountPolicy]]]
        ] = {}

    def get(
        self, account_id: int, overrides: dict[str, Any], chat_overrides: dict[str, Any] | None
    ) -> tuple[Behaviour, AccountPolicy]:
        """Rebuilt only when the stored overrides differ from the ones the cache was built
        from."""
        cached = self._cache.get(account_id)
        if cached is None or cached[0] != overrides:
            cached = self._cache[account_id] = (overrides, {})
        key = json.dumps(chat_overrides, sort_keys=True, default=str) if chat_overrides else ""
        entry = cached[1].get(key)
        if entry is None:
            if len(cached[1]) >= BEHAVIOUR_CACHE:
                cached[1].clear()
            behaviour = behaviour_of(self._settings, overrides, chat_overrides or None)
            entry = cached[1][key] = (behaviour, account_policy(behaviour))
        return entry

    async def of_chat(self, store: Store, chat: ChatRecord) -> Behaviour:
        overrides = await store.behaviour_overrides(chat.account_id)
        return self.get(chat.account_id, overrides, chat.overrides)[0]

    def forget(self, account_id: int | None = None) -> None:
        if account_id is None:
            self._cache.clear()
        else:
            self._cache.pop(account_id, None)


class Styles:
    """The account's style profile, parsed once per stored version."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[int, tuple[datetime, StyleProfile | None]] = {}

    def known(self, account_id: int) -> datetime | None:
        """The version parsed already (a transaction then skips reading the record)."""
        cached = self._cache.get(account_id)
        return None if cached is None else cached[0]

    async def get(self, account_id: int, read: StyleRead | None = None) -> StyleProfile | None:
        """`read` is (version, record or None) when the caller looked it up in its transaction."""
        if read is None:
            version = await self._store.style_profile_version(account_id)
            record = None
        else:
            version, record = read
        if version is None:
            self._cache.pop(account_id, None)
            return None
        known = self._cache.get(account_id)
        if known is not None and known[0] == version:
            return known[1]
        if record is None:
            record = await self._store.get_style_profile(account_id)
            if record is None:
                return None
        accumulator = accumulator_of(record)
        if accumulator is None and record.data:
            log.warning("stored style profile of account %s is unreadable; ignoring", account_id)
        profile = accumulator.profile() if accumulator is not None else None
        self._cache[account_id] = (record.updated_at, profile)
        return profile

    def forget(self, account_id: int | None = None) -> None:
        if account_id is None:
            self._cache.clear()
        else:
            self._cache.pop(account_id, None)
