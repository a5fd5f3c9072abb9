"""In-process fakes of the network peers, for service-level tests (STYLE.md: tests/fakes.py).

Real storage (SQLite or PostgreSQL), real services, real lifecycle; only what is at the other
end of a network connection is faked:

    FakeMessenger  one Telegram account's delivery primitives (twin.ports.Messenger): records
                   every call, remembers random_ids as Telegram does (a repeated one is reported
                   `duplicate`, not delivered twice), fails the next N sends with a given twin
                   error, or holds a send in flight until the test releases it
    FakeAccounts   the accounts of the process (twin.ports.Accounts), one FakeMessenger each
    ScriptedLLM    a chat-completion provider (twin.brain.port.LLM) answering from a script of
                   replies and errors; the real Brain runs on it (`scripted_brain`)
    EventRecorder  the event log's announcements, to wait on instead of sleeping

Time is twin.clock.ManualClock (WatchedClock adds only "who is asleep on it"). `start_twin` is
the one place that assembles the daemon for these tests: it runs `create_app` and its whole
lifecycle (migrations, services, "Telegram", worker, outage recovery) without an HTTP listener,
and it is the only thing to change when the wiring does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from aiohttp import web

from twin import keys
from twin.app import Adapters, create_app
from twin.brain.port import Completion, CompletionStream
from twin.brain.service import Brain
from twin.clock import ManualClock
from twin.config import Settings, load_settings
from twin.domain.models import (
    ChatKind,
    IncomingMessage,
    MessageKind,
    OwnerActivity,
    Sender,
    SendResult,
)
from twin.domain.prompts import PromptMessage
from twin.errors import TwinError, Unauthorized
from twin.services.events import StagedEvent

__all__ = [
    "DAYS",
    "EventRecorder",
    "FakeAccounts",
    "FakeMessenger",
    "Gate",
    "RunningTwin",
    "ScriptedLLM",
    "Sent",
    "WatchedClock",
    "brain_json",
    "incoming",
    "owner_wrote",
    "scripted_brain",
    "start_twin",
    "twin_settings",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Seconds any wait of these helpers allows before failing the test. A wait returns as soon as
# what it waits for happens; this only bounds a failure — generous, because CI's two cores run
# two workers, PostgreSQL and the daemons of the e2e tests at once (5 s timed out there now
# and then on a reply that came later).
WAIT = 15.0


# --- Telegram ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sent:
    """One message Telegram accepted (voice notes carry their caption as `text`)."""

    chat: int | str
    text: str
    random_id: int
    message_id: int
    kind: MessageKind = MessageKind.TEXT


class Gate:
    """Holds one call of a peer in flight (a send, a model call): `entered` is set when the
    call has reached the peer; `release()` lets it complete, `release(error)` makes it fail
    with `error`. A send's gate made `after_delivery` holds it once Telegram has accepted the
    message (a crash there leaves a message sent but not recorded)."""

    def __init__(self, *, after_delivery: bool = False) -> None:
        self.after_delivery = after_delivery
        self.entered = asyncio.Event()
        self._released = asyncio.Event()
        self._error: BaseException | None = None

    def release(self, error: BaseException | None = None) -> None:
        self._error = error
        self._released.set()

    async def pass_through(self) -> None:
        self.entered.set()
        await self._released.wait()
        if self._error is not None:
            raise self._error


class FakeMessenger:
    """twin.ports.Messenger in memory. `attempts` counts every send call (failed ones too),
    `delivered` what Telegram accepted, once per random_id."""

    def __init__(self, name: str = "default", *, authorized: bool = True) -> None:
        self.name = name
        self._authorized = authorized
        self.delivered: list[Sent] = []
        self.attempts: list[tuple[int | str, int]] = []  # (chat, random_id) of every send call
        self.actions: list[tuple[int | str, str]] = []
        self.reads: list[tuple[int | str, int]] = []
        self.media: dict[tuple[int | str, int], bytes] = {}
        self.deleted: list[tuple[int | str, int]] = []  # (chat, message id) deleted for all
        self._seen: dict[int, int] = {}  # random_id -> message id, as Telegram remembers
        self._failures: list[BaseException] = []
        self._gates: dict[int, Gate] = {}  # send call number -> gate
        self._ids = itertools.count(1000)

    # --- what the test controls ----------------------------------------------------------------
    def fail_sends(self, error: BaseException, times: int = 1) -> None:
        """The next `times` send calls raise `error` (a twin error: TelegramUnavailable, …)."""
        self._failures.extend([error] * times)

    def heal(self) -> None:
        """Forget the failures still queued by `fail_sends`: Telegram works again."""
        self._failures.clear()

    def hold_send(self, nth: int = 1, *, after_delivery: bool = False) -> Gate:
        """The `nth` send call from now waits at its gate until the test releases it."""
        gate = self._gates[len(self.attempts) + nth] = Gate(after_delivery=after_delivery)
        return gate

    def texts(self, chat: int | str | None = None) -> list[str]:
        return [s.text for s in self.delivered if chat is None or s.chat == chat]

    # --- the port ------------------------------------------------------------------------------
    @property
    def authorized(self) -> bool:
        return self._authorized

    def require_authorized(self) -> None:
        if not self._authorized:
            raise Unauthorized(f"account '{self.name}' is not logged in")

    async def send_text(
        self,
        chat: int | str,
        text: str,
        *,
        random_id: int,
        reply_to: int | None = None,
        buttons: Any = None,
    ) -> SendResult:
        return await self._send(chat, text, random_id, MessageKind.TEXT)

    async def send_voice(
        self,
        chat: int | str,
        ogg_opus: bytes,
        *,
        duration: float,
        waveform: bytes,
        random_id: int,
        caption: str = "",
    ) -> SendResult:
        return await self._send(chat, caption, random_id, MessageKind.VOICE)

    async def resolve_peer_id(self, chat: int | str) -> int:
        if isinstance(chat, int):
            return chat
        raise TwinError(f"FakeMessenger resolves only numeric peers, not {chat!r}")

    async def set_action(self, chat: int | str, action: str = "typing") -> None:
        self.actions.append((chat, action))

    async def mark_read(self, chat: int | str, max_id: int) -> None:
        self.reads.append((chat, max_id))

    async def download_media(self, chat: int | str, message_id: int) -> bytes:
        return self.media[(chat, message_id)]

    async def has_history(self, chat: int | str) -> bool:
        return any(sent[0] == chat for sent in self.attempts)

    async def delete_messages(self, chat: int | str, message_ids: Any) -> int:
        self.deleted.extend((chat, i) for i in message_ids)
        return len(message_ids)

    async def _send(
        self, chat: int | str, text: str, random_id: int, kind: MessageKind
    ) -> SendResult:
        self.attempts.append((chat, random_id))
        gate = self._gates.pop(len(self.attempts), None)
        if gate is not None and not gate.after_delivery:
            await gate.pass_through()
        if self._failures:
            raise self._failures.pop(0)
        if random_id in self._seen:  # RANDOM_ID_DUPLICATE: sent before, not sent again
            result = SendResult(message_id=None, duplicate=True)
        else:
            message_id = self._seen[random_id] = next(self._ids)
            self.delivered.append(Sent(chat, text, random_id, message_id, kind))
            result = SendResult(message_id=message_id)
        if gate is not None and gate.after_delivery:
            await gate.pass_through()
        return result


class FakeAccounts:
    """twin.ports.Accounts (and the lifecycle's start/stop of twin.services.accounts) over
    FakeMessengers: nothing connects anywhere."""

    def __init__(self, *messengers: FakeMessenger) -> None:
        self.messengers = {m.name: m for m in messengers or (FakeMessenger(),)}
        self.on_edited: Any = None  # set by the lifecycle, as on the real accounts
        self.on_deleted: Any = None
        self.configured = True
        self.receives_updates = True

    async def get(self, name: str = "default", *, connect: bool = True) -> FakeMessenger:
        return self.messengers[name]

    def loaded(self, name: str) -> FakeMessenger | None:
        return self.messengers.get(name)

    async def require_here(self, name: str) -> None:
        return None  # one process serves them all

    def mine(self) -> frozenset[int] | None:
        return None  # every account's work is this process's

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def forget(self, name: str) -> None:
        self.messengers.pop(name, None)


# --- the brain -----------------------------------------------------------------------------------
def brain_json(text: str, **flags: Any) -> str:
    """A structured model answer as a provider returns it (twin.domain.structured)."""
    return json.dumps(
        {
            "text": text,
            "requires_human": False,
            "intent": "chat",
            "confidence": 0.9,
            "end_conversation": False,
            **flags,
        }
    )


class ScriptedLLM:
    """twin.brain.port.LLM answering from a script: each call takes the next entry, a reply
    text (wrapped as the structured JSON answer) or an exception to raise; when the script
    runs out every call answers `default`. `hold()` keeps the next call waiting."""

    provider = "scripted"
    model = "scripted-1"

    def __init__(self, *script: str | BaseException, default: str = "Sure.") -> None:
        self._script: list[str | BaseException] = list(script)
        self.default = default
        self.calls: list[Sequence[PromptMessage]] = []
        self._gates: list[Gate] = []

    def then(self, *script: str | BaseException) -> None:
        self._script.extend(script)

    def heal(self) -> None:
        """Drop what is left of the script: every call answers `default`."""
        self._script.clear()

    def hold(self) -> Gate:
        gate = Gate()
        self._gates.append(gate)
        return gate

    async def complete(
        self,
        messages: Sequence[PromptMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        self.calls.append(messages)
        if self._gates:
            await self._gates.pop(0).pass_through()
        entry = self._script.pop(0) if self._script else self.default
        if isinstance(entry, BaseException):
            raise entry
        text = brain_json(entry) if json_schema is not None else entry
        return Completion(
            text=text,
            prompt_tokens=sum(len(m.content) for m in messages) // 4,
            completion_tokens=len(text) // 4,
            model=self.model,
            provider=self.provider,
            finish_reason="stop",
        )

    def stream(
        self, messages: Sequence[PromptMessage], *, max_tokens: int, temperature: float
    ) -> CompletionStream:
        async def pieces() -> AsyncIterator[str | Completion]:
            completion = await self.complete(
                messages, max_tokens=max_tokens, temperature=temperature
            )
            yield completion.text
            yield completion

        return CompletionStream(pieces())

    async def aclose(self) -> None:
        return None


def scripted_brain(llm: ScriptedLLM) -> Brain:
    """The real Brain (prompt, budget, structured parsing, cost) on a scripted provider."""
    return Brain(llm)


# --- time ----------------------------------------------------------------------------------------
class WatchedClock(ManualClock):
    """twin.clock.ManualClock that also tells who sleeps on it: moving time before a loop has
    gone to sleep would leave that loop's deadline counted from the new time."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._deadlines: list[datetime] = []
        self._slept = asyncio.Event()

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        deadline = self.now() + timedelta(seconds=seconds)
        self._deadlines.append(deadline)
        self._slept.set()
        try:
            return await super().sleep(seconds, wake)
        finally:
            self._deadlines.remove(deadline)

    async def sleeping(self, within: float, *, timeout: float = WAIT) -> None:
        """Wait until something sleeps on this clock that wakes at most `within` seconds
        from now."""
        async with asyncio.timeout(timeout):
            while True:
                self._slept.clear()
                horizon = self.now() + timedelta(seconds=within)
                if any(deadline <= horizon for deadline in self._deadlines):
                    return
                await self._slept.wait()


# --- events --------------------------------------------------------------------------------------
class EventRecorder:
    """Every event the event log announces, in order; `wait_for` waits on announcements."""

    def __init__(self) -> None:
        self.events: list[StagedEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: StagedEvent) -> None:  # the event log's listener
        self.events.append(event)
        self._changed.set()

    def of(self, type_: str, **data: Any) -> list[StagedEvent]:
        """The announced events of `type_` whose data has these values."""
        return [
            e
            for e in self.events
            if e.type == type_ and all(e.data.get(k) == v for k, v in data.items())
        ]

    async def wait_for(
        self, type_: str, *, count: int = 1, timeout: float = WAIT, **data: Any
    ) -> StagedEvent:
        """The `count`-th announced event of `type_` with these data values (those announced
        before the call count too)."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                found = self.of(type_, **data)
                if len(found) >= count:
                    return found[count - 1]
                await self._changed.wait()


# --- assembling the daemon -----------------------------------------------------------------------
def twin_settings(url: str, tmp_path: Any, **sections: Mapping[str, Any]) -> Settings:
    """Settings for a pipeline without artificial delays: always open, no debounce, no
    human timing, speech off; `sections` override any key."""
    base: dict[str, dict[str, Any]] = {
        "storage": {"url": url, "data_dir": tmp_path},
        "security": {"secret_key": "service-tests-secret"},
        "stt": {"provider": "none"},
        "tts": {"provider": "none"},
        "twin": {
            "owner_name": "Olga",
            "debounce_seconds": 0,
            "debounce_max_seconds": 0,
            "retry_base_seconds": 1,
            "retry_max_seconds": 8,
        },
        "schedule": {"hours": {day: ["00:00-24:00"] for day in DAYS}},
        "humanize": {"enabled": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return load_settings(None, **base)


@dataclass
class RunningTwin:
    """A started daemon (no HTTP listener): its services, and the fakes it talks to."""

    app: web.Application
    runner: web.AppRunner
    clock: ManualClock
    accounts: FakeAccounts
    llm: ScriptedLLM
    recorder: EventRecorder = field(default_factory=EventRecorder)

    @property
    def repo(self) -> Any:  # twin.db.repo.Repository
        return self.app[keys.DATABASE].repo

    @property
    def intake(self) -> Any:  # twin.services.intake.Intake
        return self.app[keys.INTAKE]

    @property
    def worker(self) -> Any:  # twin.jobs.worker.ReplyWorker
        return self.app[keys.SERVICES]["worker"]

    @property
    def chats(self) -> Any:  # twin.services.chats.ChatPauses
        return self.app[keys.CHATS]

    @property
    def messenger(self) -> FakeMessenger:
        return self.accounts.messengers["default"]

    async def stored(self, message: IncomingMessage) -> Any:
        """The stored record of a message intake took in (twin.db.records.MessageRecord)."""
        account_id = await self.app[keys.DIRECTORY].id_of(message.account)
        chat = await self.repo.get_chat_by_peer(account_id, message.chat_id)
        return await self.repo.get_message_by_tg(account_id, chat.id, message.message_id)

    async def idle(self, timeout: float = WAIT) -> None:
        """Wait until the worker has claimed with the clock as it is now and has nothing
        running: every job due by now has run to its next resting state. (The worker is woken
        twice: its `idle` flag may have been set by a claim already under way, at an earlier
        time.)"""
        worker = self.worker
        wake = self.app[keys.SERVICES]["pipeline"].wake
        async with asyncio.timeout(timeout):
            for _ in range(2):
                worker.idle.clear()
                wake.set()
                await worker.idle.wait()

    async def stop(self) -> None:
        await self.runner.cleanup()


@contextlib.asynccontextmanager
async def start_twin(
    settings: Settings,
    *,
    clock: ManualClock,
    accounts: FakeAccounts | None = None,
    llm: ScriptedLLM | None = None,
) -> AsyncIterator[RunningTwin]:
    """create_app + its lifecycle, with the brain on `llm`, time on `clock` and Telegram
    replaced by `accounts`. Stopping it (leaving the block) is a daemon shutdown: the database
    keeps everything, and starting again with the same settings is a restart."""
    accounts = accounts or FakeAccounts()
    llm = llm or ScriptedLLM()
    app = create_app(settings, adapters=Adapters(brain=scripted_brain(llm), clock=clock))
    runner = web.AppRunner(app, handle_signals=False)
    # Adapters has no seam for the Telegram accounts: the lifecycle builds
    # twin.services.accounts.TelegramAccounts itself, so that one name is swapped while it does.
    with mock.patch("twin.services.accounts.TelegramAccounts", lambda *a, **k: accounts):
        await runner.setup()
    twin = RunningTwin(app, runner, clock, accounts, llm)
    app[keys.EVENTS].subscribe(twin.recorder)
    try:
        yield twin
    finally:
        await runner.cleanup()


# --- what arrives from Telegram ------------------------------------------------------------------
_message_ids = itertools.count(1)


def incoming(
    text: str,
    *,
    chat: int = 501,
    at: datetime,
    message_id: int | None = None,
    account: str = "default",
    name: str = "Carl",
    contact: bool = True,
) -> IncomingMessage:
    """A private message from a contact, as the Telegram adapter hands it to intake."""
    return IncomingMessage(
        account=account,
        chat_id=chat,
        chat_kind=ChatKind.PRIVATE,
        message_id=message_id if message_id is not None else next(_message_ids),
        sender=Sender(id=chat, name=name, username=None, is_contact=contact, is_bot=False),
        date=at,
        text=text,
    )


def owner_wrote(
    *,
    chat: int = 501,
    at: datetime,
    message_id: int | None = None,
    account: str = "default",
    text: str = "",
) -> OwnerActivity:
    """The owner writing in a chat from another device."""
    return OwnerActivity(
        account=account,
        chat_id=chat,
        message_id=message_id if message_id is not None else next(_message_ids),
        date=at,
        text=text,
    )
