"""What the pipeline keeps between messages: the merged behaviour per settings document, and
the parsed style profile per stored version. Not needed for correctness: every step reads the
stored overrides and the profile's version in a transaction it makes anyway, and rebuilds what
changed (pydantic validation, working hours and parsing are too costly to redo per message)."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from typing import Any

from twin.config import Settings
from twin.db.records import ChatRecord, StyleProfileRecord
from twin.domain.conversation import StyleProfile
from twin.domain.decide import AccountPolicy
from twin.domain.timing import LearnedTiming
from twin.ports import Store, Tx
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


def with_timing(policy: AccountPolicy, timing: LearnedTiming | None) -> AccountPolicy:
    """The policy drawing from the learned reply timing, when `[humanize] learned` is on."""
    if timing is None or not policy.humanize.learned or policy.humanize.timing is timing:
        return policy
    humanize = dataclasses.replace(policy.humanize, timing=timing)
    return dataclasses.replace(policy, humanize=humanize)


class Styles:
    """The account's style profile and the reply timing learned with it (`[humanize] learned`),
    parsed once per stored version."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[int, tuple[datetime, StyleProfile | None, LearnedTiming | None]] = {}

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
        return self._parse(account_id, record)[0]

    def timing_tx(self, tx: Tx, account_id: int) -> LearnedTiming | None:
        """Inside a transaction: the learned reply timing of the stored version (one indexed
        read of the version; the record only when it changed)."""
        version = tx.style_profile_version(account_id)
        if version is None:
            self._cache.pop(account_id, None)
            return None
        known = self._cache.get(account_id)
        if known is not None and known[0] == version:
            return known[2]
        record = tx.get_style_profile(account_id)
        return None if record is None else self._parse(account_id, record)[1]

    def timing(self, account_id: int) -> LearnedTiming | None:
        """The timing of the version parsed last (no read): for typing, after generation read
        the profile."""
        cached = self._cache.get(account_id)
        return None if cached is None else cached[2]

    def _parse(
        self, account_id: int, record: StyleProfileRecord
    ) -> tuple[StyleProfile | None, LearnedTiming | None]:
        accumulator = accumulator_of(record)
        if accumulator is None and record.data:
            log.warning("stored style profile of account %s is unreadable; ignoring", account_id)
        profile = timing = None
        if accumulator is not None:
            profile, timing = accumulator.profile(), accumulator.timing.learned()
        self._cache[account_id] = (record.updated_at, profile, timing)
        return profile, timing

    def forget(self, account_id: int | None = None) -> None:
        if account_id is None:
            self._cache.clear()
        else:
            self._cache.pop(account_id, None)
