"""The HTTP chat channel (`POST /api/chat`): one conversation per thread, answered in the request.

The same steps as a Telegram message, in the request's own task: *plan* stores the message
and the job (`generating`, leased) in one transaction; *generate* is the pipeline's Generator
(conversation + style + memory → prompt → brain → flags); *deliver* is the HTTP response, stored
with the job as `sent` in one transaction before the response leaves. The thread's memory is
the conversation's stored turns and rolling summary, so it survives restarts.

Requests on one thread are answered one at a time, in arrival order, each seeing the answers
before it (a lock per thread in this process). A job this channel left unfinished (the process
died mid-request) has no client to answer any more: the worker cancels it (`no_client`) rather
than delivering it anywhere else. `requires_human` from the brain pauses the thread until the
owner resumes it and emits `conversation.escalated`; while it is paused, messages are stored
(skipped: `escalated`) and answered with `escalated: true` and no text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from twin.config import Settings
from twin.db.records import AccountRecord, ChatRecord, MessageRecord, ReplyRecord
from twin.domain.models import PAUSED_FOREVER, Failure, ReplyState, SkipReason
from twin.errors import ERROR_CHARS, clip, describe
from twin.ports import Clock, Store, Tx
from twin.services.events import EventLog, StagedEvent
from twin.services.pipeline.caches import Behaviours
from twin.services.pipeline.generate import Escalation, Generator
from twin.services.pipeline.records import Draft
from twin.services.pipeline.states import finish_tx
from twin.services.policy import Behaviour

log = logging.getLogger("twin.channels.http_chat")

CHANNEL = "http_chat"
LEASE = timedelta(minutes=10)  # a request never takes this long; past it the job is the worker's


def peer_of(thread_id: str) -> int:
    """The conversation's key among the instance's chats: a stable 62-bit number of the thread
    id (the chats table addresses conversations by account and number)."""
    digest = hashlib.sha256(thread_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 2


@dataclass(frozen=True, slots=True)
class ChatRequest:
    message: str
    thread_id: str | None = None
    chat_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    text: str
    thread_id: str
    escalated: bool
    reply_id: int | None
    flags: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Planned:
    chat: ChatRecord
    message: MessageRecord
    reply: ReplyRecord | None  # None: the thread is escalated, the message is only stored


class HttpChat:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Store,
        events: EventLog,
        clock: Clock,
        behaviours: Behaviours,
        generator: Generator,
    ) -> None:
        self._settings = settings.channels.chat
        self._repo = repo
        self._events = events
        self._clock = clock
        self._behaviours = behaviours
        self._generator = generator
        self._instance: AccountRecord | None = None
        self._threads: dict[str, tuple[asyncio.Lock, int]] = {}

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    async def instance(self) -> AccountRecord:
        """The channel instance's account row (created at the first request)."""
        if self._instance is None:
            self._instance = await self._repo.channel_instance(self._settings.instance, CHANNEL)
        return self._instance

    async def answer(self, request: ChatRequest) -> ChatAnswer:
        thread = request.thread_id or request.chat_id or uuid.uuid4().hex
        async with self._turn(thread):
            account = await self.instance()
            planned = await self._plan(account, thread, request)
            if planned.reply is None:
                return ChatAnswer("", thread, escalated=True, reply_id=None)
            return await self._generate(planned, thread)

    @asynccontextmanager
    async def _turn(self, thread: str) -> AsyncIterator[None]:
        """One request of a thread at a time, in arrival order (asyncio.Lock is FIFO)."""
        lock, users = self._threads.get(thread, (asyncio.Lock(), 0))
        self._threads[thread] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._threads[thread]
            if users == 1:
                del self._threads[thread]
            else:
                self._threads[thread] = (lock, users - 1)

    async def _plan(self, account: AccountRecord, thread: str, request: ChatRequest) -> _Planned:
        now = self._clock.now()

        def plan(tx: Tx) -> tuple[_Planned, list[StagedEvent]]:
            chat, _ = tx.upsert_chat(
                account.id, peer_of(thread), kind="private", title=request.user_name,
                external_id=thread,
            )
            message, _ = tx.add_incoming(
                account.id, chat.id, None, date=now, text=request.message  # type: ignore[arg-type]
            )
            chat = tx.update_chat(chat.id, last_incoming_at=now)
            received = self._events.stage(
                tx,
                "message.received",
                {
                    "chat": chat.peer_id,
                    "thread": thread,
                    "channel": CHANNEL,
                    "message_id": message.id,
                    "kind": "text",
                },
                account_id=account.id,
                chat_id=chat.id,
            )
            if chat.is_paused(now):
                tx.update_message(
                    message.id, state=ReplyState.SKIPPED, state_reason=SkipReason.ESCALATED.value
                )
                return _Planned(chat, message, None), [received]
            reply = tx.create_reply(
                account.id,
                chat.id,
                reply_at=now,
                message_ids=[message.id],
                state=ReplyState.GENERATING,
                decision={"action": "reply", "channel": CHANNEL, "explain": ["http chat"]},
                message_state=ReplyState.SCHEDULED,
                lease_until=now + LEASE,
            )
            generating = self._events.stage_reply(tx, "reply.generating", reply, channel=CHANNEL)
            return _Planned(chat, message, reply), [received, generating]

        planned, events = await self._repo.transaction(plan)
        self._events.remember_chat(planned.chat.id, planned.chat.peer_id)
        self._events.publish(*events)
        return planned

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | ChatAnswer]:
        """The answer as the model writes it: text pieces, then the ChatAnswer. Closing the
        iterator early (the client went away) closes the provider's stream and stores the
        partial text on the job, cancelled (`no_client`): never as a reply."""
        thread = request.thread_id or request.chat_id or uuid.uuid4().hex
        async with self._turn(thread):
            account = await self.instance()
            planned = await self._plan(account, thread, request)
            if planned.reply is None:
                yield ChatAnswer("", thread, escalated=True, reply_id=None)
                return
            reply = planned.reply
            behaviour = await self._behaviour(planned)
            pieces: list[str] = []
            try:
                streamed = await self._generator.stream(planned.chat, behaviour)
                try:
                    async for piece in streamed.stream:
                        pieces.append(piece)
                        yield piece
                finally:
                    await streamed.stream.aclose()
                draft = streamed.finish()
            except BaseException as exc:
                await self._failed(reply, exc, "".join(pieces))
                raise
            yield await self._delivered(planned, thread, draft)

    async def _behaviour(self, planned: _Planned) -> Behaviour:
        account_id = planned.chat.account_id
        overrides = await self._repo.get_settings(account_id)
        return self._behaviours.get(account_id, overrides, planned.chat.overrides)[0]

    async def _generate(self, planned: _Planned, thread: str) -> ChatAnswer:
        reply = planned.reply
        assert reply is not None
        behaviour = await self._behaviour(planned)
        try:
            draft = await self._generator.generate(
                reply, planned.chat, behaviour, [planned.message], rows=None, style_read=None
            )
        except BaseException as exc:
            # The client gets the error (or is gone); nobody is left to deliver a later answer.
            await self._failed(reply, exc)
            raise
        return await self._delivered(planned, thread, draft)

    async def _delivered(
        self, planned: _Planned, thread: str, draft: Draft | Escalation
    ) -> ChatAnswer:
        """Deliver = the answer stored as sent, with its usage, before the response leaves."""
        reply, chat = planned.reply, planned.chat
        assert reply is not None
        if isinstance(draft, Escalation):
            return await self._escalated(reply, chat, thread, draft)
        now = self._clock.now()

        def sent(tx: Tx) -> list[StagedEvent]:
            if draft.summary:
                tx.update_chat(chat.id, **draft.summary)
            tx.add_outgoing(
                reply.account_id, chat.id, text=draft.text, reply_id=reply.id, bubble_index=0,
                state=ReplyState.SENT, date=now,
            )
            tx.update_chat(chat.id, last_outgoing_at=now)
            done = tx.update_reply(
                reply.id,
                expect_state=ReplyState.GENERATING,
                state=ReplyState.SENT,
                text=draft.text,
                flags=draft.flags,
                lease_until=None,
                **draft.usage,
            )
            tx.finish_reply_messages(reply.id, ReplyState.SENT)
            return [self._events.stage_reply(tx, "reply.sent", done, bubbles=1, channel=CHANNEL)]

        self._events.publish(*await self._repo.transaction(sent))
        return ChatAnswer(draft.text, thread, False, reply.id, draft.flags, draft.usage)

    async def _escalated(
        self, reply: ReplyRecord, chat: ChatRecord, thread: str, escalation: Escalation
    ) -> ChatAnswer:
        """The brain handed the thread to the owner: pause it until resumed, say so."""
        text = escalation.reply.text or ""
        reason = SkipReason.ESCALATED.value

        def escalate(tx: Tx) -> list[StagedEvent]:
            if escalation.summary:
                tx.update_chat(chat.id, **escalation.summary)
            tx.update_chat(chat.id, paused_until=PAUSED_FOREVER)
            if text:
                tx.add_outgoing(
                    reply.account_id, chat.id, text=text, reply_id=reply.id, bubble_index=0,
                    state=ReplyState.SENT, date=self._clock.now(),
                )
            done = tx.update_reply(
                reply.id,
                expect_state=ReplyState.GENERATING,
                state=ReplyState.SKIPPED,
                reason=reason,
                text=text or None,
                flags=escalation.flags,
                lease_until=None,
                **escalation.usage,
            )
            tx.finish_reply_messages(reply.id, ReplyState.SKIPPED, reason)
            return [
                self._events.stage_reply(tx, "reply.skipped", done, reason=reason),
                self._events.stage(
                    tx,
                    "conversation.escalated",
                    {"chat": chat.peer_id, "thread": thread, "channel": CHANNEL, "reply": reply.id},
                    account_id=reply.account_id,
                    chat_id=chat.id,
                ),
            ]

        self._events.publish(*await self._repo.transaction(escalate))
        return ChatAnswer(text, thread, True, reply.id, escalation.flags, escalation.usage)

    async def _failed(self, reply: ReplyRecord, exc: BaseException, partial: str = "") -> None:
        """A job the client will never get: cancelled (`no_client`, keeping the partial text
        of a stream on the job) when the client went away, else failed for good."""
        gone = isinstance(exc, (asyncio.CancelledError, GeneratorExit))
        state = ReplyState.CANCELLED if gone else ReplyState.FAILED
        reason = SkipReason.NO_CLIENT.value if gone else clip(describe(exc), ERROR_CHARS)
        event = "reply.cancelled" if gone else "reply.failed"
        failure = None if gone else Failure.PERMANENT

        def finish(tx: Tx) -> StagedEvent:
            if partial:
                tx.update_reply(reply.id, text=partial)
            return finish_tx(tx, self._events, reply.id, state, reason, event, failure)[1]

        try:
            staged = await asyncio.shield(self._repo.transaction(finish))
        except Exception:  # the database too: the worker finds the job and cancels it
            log.exception("reply %s: could not record its failure", reply.id)
            return
        self._events.publish(staged)
