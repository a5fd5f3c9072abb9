"""The daemon's ports: what the services need from the outside world, as typed Protocols.

Services depend on these, never on an adapter's class; adapters (twin.db, twin.adapters.telegram,
twin.brain, twin.voice) implement them and lifecycle.py wires one implementation of each, once.
tests/core/test_ports.py checks every implementation against its port (names, parameters) and
tests/fakes.py implements them in memory for service-level tests. Records cross these seams
(frozen dataclasses of twin.domain and twin.db.records), never ORM rows or SDK objects.

    Clock        now() and an interruptible sleep (twin.clock: system, manual)
    Store / Tx   the repository and one unit of work inside `Store.transaction` (twin.db.repo;
                 declared in twin.ports.storage)
    Messenger    one Telegram account's delivery primitives (twin.adapters.telegram)
    Accounts     the accounts this process runs, by name (twin.services.accounts)
    CallGuard    the safety governor around one account's Telegram calls (twin.services.safety)
    Thinker      the brain: a conversation in, the owner's next message out (twin.brain)
    SpeechToText / TextToSpeech   voice notes in and out (twin.voice)
    Events       the durable event log (twin.services.events)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from twin.domain.safety import CallCategory
from twin.ports.storage import Store, Tx

if TYPE_CHECKING:
    from twin.brain.service import BrainResult
    from twin.db.records import ReplyRecord
    from twin.domain.conversation import ChatId, Persona, StyleProfile, Turn
    from twin.domain.models import SendResult
    from twin.domain.prompt_system import Reference
    from twin.services.events import StagedEvent
    from twin.voice.models import Transcript, VoiceNote

__all__ = [
    "Accounts",
    "Adapters",
    "Clock",
    "Events",
    "Messenger",
    "SpeechToText",
    "Store",
    "TextToSpeech",
    "Thinker",
    "Tx",
]


@runtime_checkable
class Clock(Protocol):
    """The one source of time (twin.clock): every timestamp the services and the storage write."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        """Wait `seconds` (or until `wake` is set, then return False)."""
        ...


@runtime_checkable
class Messenger(Protocol):
    """One Telegram account's delivery primitives (twin.adapters.telegram.TelegramAccount).

    Sends carry a random_id the caller persisted first: Telegram refuses a duplicate, which
    `SendResult.duplicate` reports, so a send repeated after a crash is never doubled.
    Failures are twin.errors (RateLimited with retry_after, TelegramUnavailable, …)."""

    name: str  # the account's name (what events and logs call it)

    @property
    def authorized(self) -> bool: ...

    def require_authorized(self) -> None:
        """Raise twin.errors.Unauthorized unless the account is logged in."""
        ...

    async def send_text(
        self,
        chat: int | str,
        text: str,
        *,
        random_id: int,
        reply_to: int | None = None,
        buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> SendResult:
        """`buttons`: an inline keyboard, rows of (label, callback data) — bots only."""
        ...

    async def send_voice(
        self,
        chat: int | str,
        ogg_opus: bytes,
        *,
        duration: float,
        waveform: bytes,
        random_id: int,
        caption: str = "",
    ) -> SendResult: ...

    async def resolve_peer_id(self, chat: int | str) -> int:
        """The Telegram peer id of a chat given by id, @username or phone."""
        ...

    async def set_action(self, chat: int | str, action: str = "typing") -> None: ...

    async def mark_read(self, chat: int | str, max_id: int) -> None: ...

    async def download_media(self, chat: int | str, message_id: int) -> bytes: ...

    async def has_history(self, chat: int | str) -> bool:
        """Whether the chat holds any message (a first contact: none)."""
        ...

    async def delete_messages(self, chat: int | str, message_ids: Sequence[int]) -> int:
        """Delete messages for everyone in the chat (revoke); how many were deleted."""
        ...


@runtime_checkable
class CallGuard(Protocol):
    """The safety governor of one account (twin.services.safety.AccountGuard), asked around
    every Telegram call by the adapter: it waits for the call's turn or refuses it
    (twin.errors.RateLimited with retry_after), and hears Telegram's warnings."""

    async def admit(
        self, category: CallCategory, *, to_self: bool = False, method: str = ""
    ) -> None: ...

    async def flood_wait(self, category: CallCategory, seconds: float, method: str = "") -> bool:
        """Telegram asked this category to wait `seconds` (FLOOD_WAIT): recorded; True = the
        wait is short enough to sit out and make the call again (`admit` waits it in full)."""
        ...

    async def spam_limited(self, category: CallCategory, error: str) -> None:
        """Telegram refused a call with a spam limit (PEER_FLOOD…)."""
        ...


@runtime_checkable
class Accounts(Protocol):
    """The Telegram accounts this process runs (twin.services.accounts.TelegramAccounts)."""

    async def get(self, name: str = "default", *, connect: bool = True) -> Messenger: ...

    def loaded(self, name: str) -> Messenger | None: ...

    async def require_here(self, name: str) -> None:
        """ServedElsewhere when another process of the cluster serves `name`."""
        ...

    def mine(self) -> Collection[int] | None:
        """The ids of the accounts and bots this process serves (None: every one)."""
        ...


@runtime_checkable
class Thinker(Protocol):
    """The brain (twin.brain.Brain): a conversation in, the owner's next message out, as a
    structured reply with its usage and cost. Raises LLMUnavailable (retry later) or LLMError."""

    async def reply(
        self,
        *,
        history: Sequence[Turn],
        persona: Persona,
        contact_name: str,
        style: StyleProfile | None = None,
        summary: str | None = None,
        summary_covers: int = 0,
        examples: Sequence[tuple[str, str]] = (),
        chat_id: ChatId | None = None,
        now: datetime | None = None,
        reference: Reference | None = None,
    ) -> BrainResult: ...

    async def stream_reply(
        self,
        *,
        history: Sequence[Turn],
        persona: Persona,
        contact_name: str,
        style: StyleProfile | None = None,
        summary: str | None = None,
        summary_covers: int = 0,
        examples: Sequence[tuple[str, str]] = (),
        chat_id: ChatId | None = None,
        now: datetime | None = None,
        reference: Reference | None = None,
    ) -> ReplyStreaming:
        """The same answer as plain text arriving piece by piece (HTTP channels stream it)."""
        ...


class ReplyStreaming(Protocol):
    """A reply being generated (twin.brain.service.ReplyStream): iterate its text pieces;
    `result` once they are all read; `aclose()` stops it and closes the provider request."""

    result: BrainResult | None

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SpeechToText(Protocol):
    """Transcribes one voice note.

    Raises `TooLong` (over max_seconds/max_bytes; the provider is not called), `AudioError`
    (not decodable audio; not called either) or `SpeechUnavailable` (provider failed).
    """

    async def transcribe(self, data: bytes, *, language: str | None = None) -> Transcript: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Speaks `text` in the owner's voice. Raises `SpeechUnavailable` when it cannot."""

    async def synthesize(
        self, text: str, *, voice_id: str | None = None, provider: str | None = None
    ) -> VoiceNote:
        """The twin's voice: `voice_id` of `provider` (None: [tts] provider, its voice)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Events(Protocol):
    """The durable event log (twin.services.events.EventLog): an event is appended in the
    transaction of the state change it reports, and announced after the commit."""

    async def emit(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int: ...

    def stage(
        self,
        tx: Tx,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> StagedEvent: ...

    def stage_reply(self, tx: Tx, type: str, reply: ReplyRecord, **data: Any) -> StagedEvent: ...

    def publish(self, *events: StagedEvent | None) -> None: ...


def missing(implementation: object, port: type) -> list[str]:
    """The members of `port` that `implementation` lacks (empty when it implements it)."""
    names = [
        name for name in dir(port) if not name.startswith("_") and name not in _PROTOCOL_MACHINERY
    ]
    return sorted(name for name in names if not hasattr(implementation, name))


_PROTOCOL_MACHINERY = frozenset(dir(Protocol))


@dataclass(frozen=True)
class Adapters:
    """Optional replacements for I/O dependencies (service-level tests inject fakes here);
    each must implement its port (this module), which `create_app` checks."""

    database: Any | None = None  # a twin.db.engine.Database, or a health-only stand-in
    brain: Thinker | None = None
    stt: SpeechToText | None = None
    tts: TextToSpeech | None = None
    clock: Clock | None = None


PORTS: dict[str, type] = {
    "brain": Thinker,
    "stt": SpeechToText,
    "tts": TextToSpeech,
    "clock": Clock,
}


def check_adapters(adapters: Adapters) -> None:
    """Fail now, not at the first message, when an injected adapter lacks part of its port."""
    problems = [
        f"adapters.{field.name} ({type(value).__name__}) lacks {', '.join(lacking)} of "
        f"twin.ports.{PORTS[field.name].__name__}"
        for field in fields(adapters)
        if field.name in PORTS
        and (value := getattr(adapters, field.name)) is not None
        and (lacking := missing(value, PORTS[field.name]))
    ]
    if problems:
        raise TypeError("; ".join(problems))
