"""Pausing and resuming the twin in a chat: the one implementation, for the owner's pause
(`POST /chats/{id}/pause|resume`) and for the owner-takeover pause (the owner wrote in the chat
from another device, twin.services.pipeline.takeover).

A pause and the cancellation of the chat's unfinished replies are ONE transaction (with their
events): no reply can be planned into the chat once it is committed (planning and pausing a chat
hold the same lock, and the plan reads the pause), and none is left pending by a crash between
the two. The chat's running jobs are interrupted right before the commit: a running job checks
its flag right before each send, so nothing is sent once the cancellation is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from twin.clock import Clock
from twin.db.records import ChatRecord
from twin.domain.models import PAUSED_FOREVER, ReplyState, SkipReason
from twin.errors import Conflict, NotFound
from twin.ports import Store, Tx
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.pipeline.states import finish_tx


class Interrupts(Protocol):
    """The reply jobs running in this process (twin.services.pipeline.runs.Runs)."""

    def interrupt(self, chat_id: int) -> None: ...

    def lock(self, account_id: int, peer_id: int) -> asyncio.Lock: ...


class _Keep:
    """`hold(until=KEEP)`: cancel the pending replies, leave the pause as it is."""


KEEP = _Keep()


@dataclass(frozen=True, slots=True)
class Held:
    chat: ChatRecord
    cancelled: int


class ChatHold:
    """Pause a chat and cancel its unfinished replies, committed together."""

    def __init__(self, store: Store, events: EventLog, runs: Interrupts | None = None) -> None:
        self._store = store
        self._events = events
        self._runs = runs

    async def hold(
        self,
        chat: ChatRecord,
        until: datetime | _Keep | None,
        *,
        reason: str = SkipReason.PAUSED.value,
        event: Callable[[Tx, int], StagedEvent] | None = None,
        takeover_since: datetime | None = None,
    ) -> Held:
        """Set the chat's pause to `until` (None: resumed; KEEP: unchanged) and cancel its
        unfinished replies (a half-sent one stops after its current bubble), with `event`
        (staged with the number cancelled) in the same transaction. A pause set here is the
        owner's own unless `takeover_since` says which takeover it is (its first owner
        message)."""
        self._events.remember_chat(chat.id, chat.peer_id)  # for the events' log lines
        lock = self._runs.lock(chat.account_id, chat.peer_id) if self._runs else None
        async with lock or contextlib.nullcontext():
            unfinished = [
                reply.id
                for reply in await self._store.unfinished_replies(chat.account_id)
                if reply.chat_id == chat.id
            ]
            if unfinished and self._runs is not None:
                self._runs.interrupt(chat.id)

            def work(tx: Tx) -> tuple[ChatRecord, list[StagedEvent]]:
                current = chat
                if not isinstance(until, _Keep):
                    paused_until, since = until, takeover_since
                    if since is not None and until is not None:
                        # Two owner messages handled at once: the later window wins whichever
                        # is written last, and the takeover keeps its first message (the cap).
                        fresh = tx.get_chat(chat.id)
                        if fresh.paused_until is not None and fresh.paused_until > until:
                            paused_until = fresh.paused_until
                        still = fresh.paused_until is not None and fresh.paused_until >= since
                        if fresh.takeover_started_at is not None and still:
                            since = min(since, fresh.takeover_started_at)
                    current = tx.update_chat(
                        chat.id, paused_until=paused_until, takeover_started_at=since
                    )
                staged = []
                for reply_id in unfinished:
                    try:
                        _, cancelled = finish_tx(
                            tx,
                            self._events,
                            reply_id,
                            ReplyState.CANCELLED,
                            reason,
                            "reply.cancelled",
                        )
                    except Conflict:  # finished meanwhile
                        continue
                    staged.append(cancelled)
                if event is not None:
                    staged.append(event(tx, len(staged)))
                drafts = tx.cancel_chat_drafts(chat.id, reason)  # the owner's now, not a draft
                if drafts:
                    staged.append(
                        self._events.stage(
                            tx,
                            "draft.cancelled",
                            {"drafts": drafts, "chat": chat.peer_id, "reason": reason},
                            account_id=chat.account_id,
                            chat_id=chat.id,
                        )
                    )
                return current, staged

            current, staged = await self._store.transaction(work)
        self._events.publish(*staged)
        cancelled = sum(1 for e in staged if e.type == "reply.cancelled")
        return Held(current, cancelled)


@dataclass(frozen=True, slots=True)
class Paused:
    chat: ChatRecord
    until: datetime
    cancelled: int


class ChatPauses:
    """The owner's pause and resume of a chat (behind the API)."""

    def __init__(
        self,
        store: Store,
        directory: AccountDirectory,
        events: EventLog,
        clock: Clock,
        holds: ChatHold,
        *,
        on_resume: Callable[[Tx, ChatRecord], list[StagedEvent]] | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._events = events
        self._clock = clock
        self._holds = holds
        self._on_resume = on_resume  # the pipeline brings deferred replies forward
        self._wake = wake  # the worker, when a reply became due sooner

    async def _chat(self, account: str, peer_id: int) -> ChatRecord:
        account_id = await self._directory.id_of(account)
        try:
            return await self._store.get_chat_by_peer(account_id, peer_id)
        except NotFound:
            raise NotFound(f"chat {peer_id} is unknown to account '{account}'") from None

    async def pause(
        self, account: str, peer_id: int, minutes: float | None, *, until: datetime | None = None
    ) -> Paused:
        """Pause for `minutes` (None: until resumed), or until `until` when given (an owner
        command's pause counts from the command); pausing again replaces the end."""
        now = self._clock.now()
        if until is None:
            until = PAUSED_FOREVER if minutes is None else now + timedelta(minutes=minutes)
        chat = await self._chat(account, peer_id)

        def paused(tx: Tx, cancelled: int) -> StagedEvent:
            data = {
                "account": account,
                "chat": peer_id,
                "until": None if minutes is None else until.isoformat(),
                "minutes": minutes,
                "cancelled": cancelled,
            }
            return self._events.stage(
                tx, "chat.paused", data, account_id=chat.account_id, chat_id=chat.id
            )

        held = await self._holds.hold(chat, until, event=paused)
        return Paused(held.chat, until, held.cancelled)

    async def resume(self, account: str, peer_id: int) -> ChatRecord:
        """End a pause (the owner's, or the takeover pause after writing in the chat); the
        contact's messages deferred to the takeover's end are answered as if it ended now."""
        chat = await self._chat(account, peer_id)

        def work(tx: Tx) -> tuple[ChatRecord, list[StagedEvent]]:
            resumed = tx.update_chat(chat.id, paused_until=None, takeover_started_at=None)
            event = self._events.stage(
                tx,
                "chat.resumed",
                {"account": account, "chat": peer_id},
                account_id=chat.account_id,
                chat_id=chat.id,
            )
            sooner = self._on_resume(tx, resumed) if self._on_resume is not None else []
            return resumed, [event, *sooner]

        resumed, staged = await self._store.transaction(work)
        self._events.publish(*staged)
        if len(staged) > 1 and self._wake is not None:
            self._wake()
        return resumed
