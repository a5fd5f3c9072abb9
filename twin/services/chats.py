"""Pausing and resuming the twin in a chat: the one implementation, for the owner's pause
(`POST /chats/{id}/pause|resume`) and for the owner-takeover pause (the owner wrote in the chat
from another device).

A pause is stored before anything is cancelled, so no reply can be planned into the chat once
the cancellation runs; a reply job already running checks its cancellation flag right before
each send (see ReplyPipeline.cancel_pending), so nothing is sent after a pause took effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from twin.clock import Clock
from twin.db.records import ChatRecord
from twin.domain.models import PAUSED_FOREVER, SkipReason
from twin.errors import NotFound
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog

Cancel = Callable[[int, int, str], Awaitable[int]]  # (account id, chat id, reason) -> cancelled


class ChatStore(Protocol):
    async def update_chat(self, chat_id: int, **fields: object) -> ChatRecord: ...
    async def set_paused(
        self, account_id: int, peer_id: int, until: datetime | None
    ) -> ChatRecord: ...


async def hold(
    store: ChatStore, cancel: Cancel | None, account_id: int, chat_id: int, until: datetime
) -> int:
    """Pause a chat until `until` and cancel its pending reply; how many were cancelled."""
    await store.update_chat(chat_id, paused_until=until)
    return await cancel(account_id, chat_id, SkipReason.PAUSED.value) if cancel else 0


@dataclass(frozen=True, slots=True)
class Paused:
    chat: ChatRecord
    until: datetime
    cancelled: int


class ChatPauses:
    """The owner's pause and resume of a chat (behind the API)."""

    def __init__(
        self,
        store: ChatStore,
        directory: AccountDirectory,
        events: EventLog,
        clock: Clock,
        cancel: Cancel | None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._events = events
        self._clock = clock
        self._cancel = cancel

    async def _chat(self, account: str, peer_id: int, until: datetime | None) -> ChatRecord:
        account_id = await self._directory.id_of(account)
        try:
            return await self._store.set_paused(account_id, peer_id, until)
        except NotFound:
            raise NotFound(f"chat {peer_id} is unknown to account '{account}'") from None

    async def pause(self, account: str, peer_id: int, minutes: float | None) -> Paused:
        """Pause for `minutes` (None: until resumed); pausing again replaces the end."""
        now = self._clock.now()
        until = PAUSED_FOREVER if minutes is None else now + timedelta(minutes=minutes)
        chat = await self._chat(account, peer_id, until)
        cancelled = await hold(self._store, self._cancel, chat.account_id, chat.id, until)
        await self._events.emit(
            "chat.paused",
            {
                "account": account,
                "chat": peer_id,
                "until": None if minutes is None else until.isoformat(),
                "minutes": minutes,
                "cancelled": cancelled,
            },
            account_id=chat.account_id,
            chat_id=chat.id,
        )
        return Paused(chat, until, cancelled)

    async def resume(self, account: str, peer_id: int) -> ChatRecord:
        """End a pause (the owner's, or the takeover pause after writing in the chat)."""
        chat = await self._chat(account, peer_id, None)
        await self._events.emit(
            "chat.resumed",
            {"account": account, "chat": peer_id},
            account_id=chat.account_id,
            chat_id=chat.id,
        )
        return chat
