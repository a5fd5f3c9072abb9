"""Twins as resources: the personas accounts and channel instances answer as.

A twin is a name, its overrides of the behaviour sections over config.toml — `[twin]` (persona,
facts, boundaries, language, disclose_assistant, greeting, reply policy), `[schedule]`,
`[humanize]` — validated exactly as the file is, and its voice. What a reply uses, layer over
layer: config.toml → the account's twin → the account's own overrides (PUT /settings) → the
chat's (PUT /chats/{id}/settings). The twin named `default` is config.toml's `[twin]` section
plus what is stored for it, so existing set-ups answer exactly as before and editing config.toml
still works; an account or channel with no twin set answers as `default`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twin.config import Settings
from twin.db.records import TwinRecord
from twin.db.repo.twins import DEFAULT_TWIN
from twin.errors import Conflict, InvalidSettings
from twin.ports import Store
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.policy import Behaviour, behaviour_of
from twin.services.settings import changed_keys, validate_overrides

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VOICE_PROVIDERS = ("elevenlabs", "openai")


@dataclass(frozen=True, slots=True)
class TwinView:
    record: TwinRecord
    behaviour: Behaviour  # config.toml with this twin's overrides
    accounts: list[str]  # accounts and channel instances answering as it


class Twins:
    def __init__(
        self, settings: Settings, store: Store, events: EventLog, directory: AccountDirectory
    ) -> None:
        self._settings = settings
        self._store = store
        self._events = events
        self._directory = directory

    async def seed(self) -> None:
        """The `default` twin exists (config.toml's [twin], nothing stored over it)."""
        await self._store.ensure_twin(DEFAULT_TWIN)

    async def list(self) -> list[TwinView]:
        return [await self._view(record) for record in await self._store.list_twins()]

    async def get(self, name: str) -> TwinView:
        return await self._view(await self._store.get_twin(name))  # NotFound: 404

    async def create(
        self, name: str, overrides: Mapping[str, Any], voice: Mapping[str, Any]
    ) -> TwinView:
        problems = [] if _NAME.match(name) else [("name", "1-64 letters, digits, '_', '.', '-'")]
        normalised, voice = self._checked(overrides, voice, problems)
        record = await self._store.create_twin(name, normalised, voice)  # Conflict: 409
        await self._events.emit("twin.created", {"name": name})
        return await self._view(record)

    async def replace(
        self, name: str, overrides: Mapping[str, Any], voice: Mapping[str, Any]
    ) -> TwinView:
        """Replace the twin's overrides and voice (what is not given falls back to
        config.toml); takes effect for the next reply."""
        before = await self._store.get_twin(name)  # NotFound: 404
        normalised, voice = self._checked(overrides, voice, [])
        record = await self._store.update_twin(name, normalised, voice)
        changed = changed_keys(before.settings, normalised)
        if before.voice != voice:
            changed["voice"] = sorted(set(before.voice) | set(voice))
        await self._events.emit("twin.updated", {"name": name, "changed": changed})
        return await self._view(record)

    async def delete(self, name: str) -> None:
        if name == DEFAULT_TWIN:
            raise Conflict("The default twin cannot be deleted: it answers wherever none is set.")
        record = await self._store.get_twin(name)  # NotFound: 404
        users = await self._store.twin_accounts(record.id)
        channels = [
            f"channels.{channel}"
            for channel, twin in (
                ("chat", self._settings.channels.chat.twin),
                ("talkme", self._settings.channels.talkme.twin),
            )
            if twin == name
        ]
        if users or channels:
            raise Conflict(
                f"Twin '{name}' is in use; link these elsewhere first.",
                [("accounts", ", ".join(users))] * bool(users)
                + [("config", ", ".join(channels))] * bool(channels),
            )
        await self._store.delete_twin(name)
        await self._events.emit("twin.deleted", {"name": name})

    async def link(self, account: str, twin: str) -> TwinView:
        """Make `account` answer as `twin` (from its next reply)."""
        account_id = await self._directory.id_of(account)  # NotFound: 404
        record = await self._store.get_twin(twin)  # NotFound: 404
        await self._store.set_account_twin(account_id, record.id)
        await self._events.emit(
            "account.twin_changed", {"account": account, "twin": twin}, account_id=account_id
        )
        return await self._view(record)

    async def twin_of(self, twin_id: int | None) -> str:
        if twin_id is None:
            return DEFAULT_TWIN
        for record in await self._store.list_twins():
            if record.id == twin_id:
                return record.name
        return DEFAULT_TWIN

    def _checked(
        self,
        overrides: Mapping[str, Any],
        voice: Mapping[str, Any],
        problems: list[tuple[str, str]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        normalised: dict[str, Any] = {}
        try:
            normalised = validate_overrides(self._settings, overrides)
        except InvalidSettings as exc:
            problems = problems + exc.problems
        voice = {key: value for key, value in voice.items() if value is not None}
        problems = problems + self._voice_problems(voice)
        if problems:
            raise InvalidSettings(problems, "The twin is not valid.")
        return normalised, voice

    def _voice_problems(self, voice: Mapping[str, Any]) -> list[tuple[str, str]]:
        """A voice speaks through a configured provider ([tts] provider, or a [tts.<name>]
        account); an ElevenLabs voice other than [tts]'s names its voice id."""
        tts = self._settings.tts
        provider = voice.get("provider")
        if provider is None:
            return []
        if provider not in VOICE_PROVIDERS:
            return [("voice.provider", f"one of {', '.join(VOICE_PROVIDERS)}")]
        if provider not in tts.providers():
            variable = f"TWIN_TTS__{provider.upper()}__API_KEY"
            return [
                (
                    "voice.provider",
                    f"{provider!r} is not configured: set [tts] provider = {provider!r}, or "
                    f"{variable} (or [tts.{provider}] base_url) for a second provider",
                )
            ]
        if provider == "elevenlabs" and not voice.get("voice_id") and tts.provider != provider:
            return [("voice.voice_id", "required with provider 'elevenlabs'")]
        return []

    async def _view(self, record: TwinRecord) -> TwinView:
        users = await self._store.twin_accounts(record.id, default=record.name == DEFAULT_TWIN)
        return TwinView(record, behaviour_of(self._settings, record.settings), users)
