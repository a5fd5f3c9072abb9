"""Per-account and per-chat behaviour overrides: merge, validate, store, announce.

The `[twin]`, `[schedule]` and `[humanize]` sections of config.toml are the defaults; an account
stores overrides of them, a chat overrides its account's. A change is a merge patch one level
deep: a section's keys are merged into the stored overrides, each key's value replaces the
stored one whole (so `schedule.hours` is always the complete weekly table), `null` for a key
drops that override and `null` for a section drops all of its overrides. Every change is
validated against the config defaults exactly as the pipeline will read it
(`twin.services.policy`) and stored normalised; changes are serialised (one read-modify-write at
a time), so two concurrent patches never lose each other's keys.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from twin.config import Settings
from twin.db.records import ChatRecord
from twin.errors import Conflict, InvalidSettings, NotFound
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.policy import (
    OVERRIDABLE,
    Behaviour,
    account_policy,
    behaviour_of,
    merge_behaviour,
)

SECTIONS = tuple(OVERRIDABLE)  # twin, schedule, humanize
Patch = Mapping[str, Mapping[str, Any] | None]
Overrides = dict[str, dict[str, Any]]
# Domain parsers name the exact key first: "schedule.hours.mon: '25:00-26:00' is not …".
_NAMED_KEY = re.compile(
    r"^(?P<path>[a-z_]+(?:\.[a-z0-9_]+|\[\d+\])+)(?P<sep>:\s*|\s+)(?P<rest>.*)$", re.DOTALL
)


class SettingsStore(Protocol):
    async def get_settings(self, account_id: int) -> dict[str, Any]: ...
    async def put_settings(self, account_id: int, data: Mapping[str, Any]) -> dict[str, Any]: ...
    async def get_chat_by_peer(self, account_id: int, peer_id: int) -> ChatRecord: ...
    async def update_chat(self, chat_id: int, **fields: Any) -> ChatRecord: ...


@dataclass(frozen=True, slots=True)
class AccountSettings:
    account: str
    behaviour: Behaviour  # config.toml with the overrides applied
    overrides: Overrides


@dataclass(frozen=True, slots=True)
class ChatSettings:
    account: str
    chat: ChatRecord
    behaviour: Behaviour  # config.toml + account overrides + chat overrides
    overrides: Overrides


def merge_patch(stored: Mapping[str, Any], patch: Patch) -> Overrides:
    """Stored overrides with `patch` applied (see the module docstring); empty sections go."""
    result = {
        name: dict(section) for name, section in stored.items() if isinstance(section, Mapping)
    }
    for name, changes in patch.items():
        if changes is None:
            result.pop(name, None)
            continue
        section = result.setdefault(name, {})
        for key, value in changes.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
        if not section:
            del result[name]
    return result


def validate_overrides(settings: Settings, overrides: Mapping[str, Mapping[str, Any]]) -> Overrides:
    """The overrides normalised by the config models (e.g. "5" → 5.0), or InvalidSettings
    with a dotted field path per problem (`schedule.hours.mon`, `twin.takeover_minutes`)."""
    base = behaviour_of(settings)
    problems: list[tuple[str, str]] = []
    normalised: Overrides = {}
    for name in SECTIONS:
        patch = overrides.get(name)
        if not patch:
            continue
        try:
            merged = merge_behaviour(base, {name: patch})
        except ValidationError as exc:
            problems.extend(_problems(name, exc))
            continue
        normalised[name] = getattr(merged, name).model_dump(mode="json", include=set(patch))
    if not problems:
        try:  # what the pipeline builds from them; the section models check most of it already
            account_policy(behaviour_of(settings, normalised))
        except ValueError as exc:
            problems.append(_named(str(exc), "settings"))
    if problems:
        raise InvalidSettings(problems)
    return normalised


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per section, the keys whose override was added, changed or dropped."""
    changed = {}
    for name in SECTIONS:
        old, new = before.get(name) or {}, after.get(name) or {}
        keys_ = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
        if keys_:
            changed[name] = keys_
    return changed


def _problems(section: str, exc: ValidationError) -> Iterator[tuple[str, str]]:
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join([section, *(str(part) for part in error["loc"])])
        yield _named(error["msg"].removeprefix("Value error, "), field, section)


def _named(message: str, field: str, section: str | None = None) -> tuple[str, str]:
    """(field, message), preferring the exact key a domain parser named in its message."""
    match = _NAMED_KEY.match(message)
    if match and (section is None or match["path"].startswith(section + ".")):
        path = re.sub(r"\[(\d+)\]", r".\1", match["path"])
        return path, match["rest"] if match["sep"].startswith(":") else message
    return field, message


def _section_problems(
    settings: Settings, overrides: Mapping[str, Any], section: str
) -> list[tuple[str, str]]:
    try:
        merge_behaviour(behaviour_of(settings), {section: overrides.get(section)})
    except ValidationError as exc:
        return list(_problems(section, exc))
    return []


class BehaviourSettings:
    """Read and change the overrides of accounts and chats (behind the API)."""

    def __init__(
        self,
        settings: Settings,
        store: SettingsStore,
        directory: AccountDirectory,
        events: EventLog,
    ) -> None:
        self._settings = settings
        self._store = store
        self._directory = directory
        self._events = events
        self._lock = asyncio.Lock()

    def _effective(self, overrides: Mapping[str, Any]) -> Behaviour:
        try:
            return behaviour_of(self._settings, overrides)
        except ValidationError as exc:  # config.toml changed under stored overrides
            problems = [
                p for name in SECTIONS for p in _section_problems(self._settings, overrides, name)
            ]
            raise Conflict(
                "The stored overrides are not valid with the current config.toml: correct or "
                "drop them with PUT /settings.",
                problems or [("settings", str(exc))],
            ) from None

    @staticmethod
    def _shown(overrides: Mapping[str, Any]) -> Overrides:
        return {name: dict(overrides[name]) for name in SECTIONS if overrides.get(name)}

    async def get(self, account: str) -> AccountSettings:
        account_id = await self._directory.id_of(account)
        overrides = await self._store.get_settings(account_id)
        return AccountSettings(account, self._effective(overrides), self._shown(overrides))

    async def update(self, account: str, patch: Patch) -> AccountSettings:
        """Merge `patch` into the account's overrides; InvalidSettings (nothing stored) when
        the result does not validate. Takes effect for the next message."""
        account_id = await self._directory.id_of(account)
        async with self._lock:
            stored = await self._store.get_settings(account_id)
            overrides = validate_overrides(self._settings, merge_patch(stored, patch))
            if overrides != stored:
                await self._store.put_settings(account_id, overrides)
        changed = changed_keys(stored, overrides)
        if changed:
            await self._events.emit(
                "settings.changed", {"account": account, "changed": changed}, account_id=account_id
            )
        return AccountSettings(account, self._effective(overrides), self._shown(overrides))

    async def _chat(self, account: str, peer_id: int) -> tuple[int, ChatRecord]:
        account_id = await self._directory.id_of(account)
        try:
            return account_id, await self._store.get_chat_by_peer(account_id, peer_id)
        except NotFound:
            raise NotFound(f"chat {peer_id} is unknown to account '{account}'") from None

    async def _chat_settings(self, account: str, account_id: int, chat: ChatRecord) -> ChatSettings:
        account_overrides = await self._store.get_settings(account_id)
        try:
            behaviour = behaviour_of(self._settings, account_overrides, chat.overrides or None)
        except ValidationError as exc:
            raise Conflict(
                "The stored chat overrides are not valid with the current settings.",
                list(_problems("settings", exc)),
            ) from None
        overrides = {k: dict(v) for k, v in (chat.overrides or {}).items() if v}
        return ChatSettings(account, chat, behaviour, overrides)

    async def get_chat(self, account: str, peer_id: int) -> ChatSettings:
        account_id, chat = await self._chat(account, peer_id)
        return await self._chat_settings(account, account_id, chat)

    async def update_chat(self, account: str, peer_id: int, patch: Patch) -> ChatSettings:
        """Merge `patch` into the chat's overrides (validated like the account's)."""
        account_id, chat = await self._chat(account, peer_id)
        async with self._lock:
            overrides = validate_overrides(self._settings, merge_patch(chat.overrides or {}, patch))
            chat = await self._store.update_chat(chat.id, overrides=overrides)
        await self._events.emit(
            "chat.settings_changed",
            {"account": account, "chat": peer_id, "overrides": overrides},
            account_id=account_id,
            chat_id=chat.id,
        )
        return await self._chat_settings(account, account_id, chat)
