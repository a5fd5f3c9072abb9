"""The pipeline's steps for channels answered in their own request (HTTP chat, TalkMe).

*plan* stores the message and the job (`generating`, leased) in one transaction; *generate* is
the pipeline's Generator (conversation + style + memory → prompt → brain → flags), or its
stream; *deliver* stores the answer as the job's one `sent` bubble with its usage, in one
transaction, before the response leaves. A conversation's memory is its stored turns and rolling
summary, so it survives restarts.

`turn(thread)` answers one request of a conversation at a time, in arrival order (a FIFO lock
per conversation, in this process). A delivery with a `key` (a webhook's identity) is stored
once: the same delivery again finds its answer instead of a second generation. A job one of
these channels leaves unfinished (the process died mid-request) has no client any more: the
worker cancels it (`no_client`) rather than delivering it anywhere. `requires_human` pauses the
conversation until the owner resumes it (event `conversation.escalated`); while it is paused,
messages are stored (skipped: `escalated`) and the model is not asked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from twin.channels.notify import EscalationNote, escalation_note
from twin.channels.records import (
    Also,
    Answer,
    ChannelParts,
    Inbound,
    Planned,
    peer_of,
)
from twin.db.records import AccountRecord, ChatRecord, MessageRecord, ReplyRecord
from twin.domain.models import PAUSED_FOREVER, Failure, ReplyState, SkipReason
from twin.domain.policies.working_hours import is_open
from twin.errors import ERROR_CHARS, Conflict, NotFound, clip, describe
from twin.locks import KeyedLocks
from twin.ports import Tx
from twin.services.events import StagedEvent
from twin.services.outbox import new_random_id
from twin.services.pipeline.fastpath import started_tx
from twin.services.pipeline.generate import Escalation
from twin.services.pipeline.records import Draft
from twin.services.pipeline.states import finish_tx
from twin.services.policy import Behaviour, working_hours

__all__ = ["LEASE", "Answer", "ChannelParts", "Conversations", "Inbound", "Planned", "peer_of"]

log = logging.getLogger("twin.channels")

LEASE = timedelta(minutes=10)  # a request never takes this long; past it the job is the worker's


class ChannelSection(Protocol):
    """What every `[channels.<name>]` section says (twin.config_channels)."""

    instance: str
    twin: str
    working_hours: bool
    notify: str


class Conversations:
    def __init__(
        self,
        channel: str,
        instance: str,
        twin: str,
        parts: ChannelParts,
        *,
        hours: bool = False,
        notify: str = "",
        queued: bool = False,
    ) -> None:
        self.channel = channel
        self._hours = hours  # answer only within [schedule] hours (else the away message)
        self._notify = notify  # the Telegram account told of escalations ("": the twin's)
        # Answered by the worker rather than in the request: the plan queues the job
        # (due now) and wakes the worker; the channel delivers (twin.channels.external).
        self._queued = queued
        self._wake = parts.wake
        self._notifier = parts.notifier
        self._twin_id: int | None = None
        self._name = instance
        self._twin = twin
        self._repo = parts.repo
        self._events = parts.events
        self._clock = parts.clock
        self._behaviours = parts.behaviours
        self._styles = parts.styles
        self._generator = parts.generator
        self._instance: AccountRecord | None = None
        self._threads = KeyedLocks()

    @classmethod
    def of(
        cls, channel: str, section: ChannelSection, parts: ChannelParts, **options: Any
    ) -> Conversations:
        """The conversations of a `[channels.<name>]` section's instance."""
        return cls(
            channel,
            section.instance,
            section.twin,
            parts,
            hours=section.working_hours,
            notify=section.notify,
            **options,
        )

    @property
    def answers(self) -> bool:
        """Whether a model is configured: without one these channels answer 503."""
        return self._generator.answers

    async def instance(self) -> AccountRecord:
        """The channel instance's account row (created at the first request)."""
        if self._instance is None:
            instance = await self._repo.channel_instance(self._name, self.channel)
            try:
                if self._twin == "default":  # config.toml's: exists even if start-up missed it
                    twin = await self._repo.ensure_twin(self._twin)
                else:
                    twin = await self._repo.get_twin(self._twin)
            except NotFound:
                raise Conflict(
                    f"[channels] twin = '{self._twin}' of the {self.channel} channel names no "
                    "twin: create it (POST /twins) or change the setting"
                ) from None
            if instance.twin_id != twin.id:
                await self._repo.set_account_twin(instance.id, twin.id)
            self._twin_id = twin.id
            self._instance = instance
        return self._instance

    @asynccontextmanager
    async def turn(self, thread: str) -> AsyncIterator[None]:
        """One request of a conversation at a time, in arrival order."""
        async with self._threads.hold(thread):
            yield

    # --- plan ----------------------------------------------------------------------------------
    async def plan(self, inbound: Inbound) -> Planned:
        account = await self.instance()
        now = self._clock.now()
        channel = self.channel
        style_known = self._styles.known(account.id)

        def plan(tx: Tx) -> tuple[Planned, list[StagedEvent]]:
            chat, _ = tx.upsert_chat(
                account.id,
                peer_of(inbound.thread),
                kind="private",
                title=inbound.user_name,
                external_id=inbound.thread,
            )
            message, new = tx.add_incoming(
                account.id,
                chat.id,
                inbound.key,
                date=now,
                text=inbound.text,  # type: ignore[arg-type]
            )
            previous = dict(chat.channel_data)
            if not new and message.reply_id is not None:
                earlier = tx.get_reply(message.reply_id)
                if earlier.state is ReplyState.SENT:
                    repeated = Planned(chat, message, None, repeated=earlier, previous=previous)
                    return repeated, []
            new_session = inbound.session is not None and (
                previous.get("session_id") != inbound.session
            )
            data = dict(inbound.data)
            if inbound.session is not None:
                data["session_id"] = inbound.session
            if new_session:
                data["session_started_at"] = now.isoformat()
            updates: dict[str, Any] = {"last_incoming_at": now}
            if data:
                updates["channel_data"] = {**previous, **data}
            chat = tx.update_chat(chat.id, **updates)
            received = self._events.stage(
                tx,
                "message.received",
                {
                    "chat": chat.peer_id,
                    "thread": inbound.thread,
                    "channel": channel,
                    "message_id": message.id,
                    "kind": "text",
                },
                account_id=account.id,
                chat_id=chat.id,
            )
            overrides = tx.behaviour_overrides(account.id)
            if self._hours:
                schedule = self._behaviours.get(account.id, overrides, chat.overrides)[0].schedule
                if not is_open(working_hours(schedule), now):
                    tx.update_message(
                        message.id,
                        state=ReplyState.SKIPPED,
                        state_reason=SkipReason.OUTSIDE_HOURS.value,
                    )
                    away = schedule.away_message
                    return Planned(chat, message, None, previous=previous, away=away), [received]
            if chat.is_paused(now):
                tx.update_message(
                    message.id, state=ReplyState.SKIPPED, state_reason=SkipReason.ESCALATED.value
                )
                return Planned(chat, message, None, previous=previous), [received]
            if self._queued:
                queued, staged = self._queue_tx(tx, chat, message, previous, now)
                return queued, [received, *staged]
            reply = tx.create_reply(
                account.id,
                chat.id,
                reply_at=now,
                message_ids=[message.id],
                state=ReplyState.GENERATING,
                decision={
                    "action": "reply",
                    "channel": channel,
                    "greeting": inbound.greeting or new_session,
                    "explain": [f"{channel}: answered in the request"],
                },
                message_state=ReplyState.SCHEDULED,
                lease_until=now + LEASE,
            )
            generating = self._events.stage_reply(tx, "reply.generating", reply, channel=channel)
            started = started_tx(tx, account.id, chat.id, style_known)
            planned = Planned(chat, message, reply, None, overrides, started, previous, new_session)
            return planned, [received, generating]

        planned, events = await self._repo.transaction(plan)
        self._events.remember_chat(planned.chat.id, planned.chat.peer_id)
        self._events.publish(*events)
        if self._queued and planned.reply is not None and self._wake is not None:
            self._wake()
        return planned

    def _queue_tx(
        self,
        tx: Tx,
        chat: ChatRecord,
        message: MessageRecord,
        previous: dict[str, Any],
        now: datetime,
    ) -> tuple[Planned, list[StagedEvent]]:
        """A channel answered by the worker (`queued`): the message joins the chat's job that
        has not started yet, else a new job due now. `Planned.reply` is the job."""
        pending = tx.pending_reply(chat.id)
        if pending is not None:
            tx.attach_messages(pending.id, [message.id], message_state=ReplyState.SCHEDULED)
            return Planned(chat, message, pending, previous=previous), []
        reply = tx.create_reply(
            chat.account_id,
            chat.id,
            reply_at=now,
            message_ids=[message.id],
            state=ReplyState.SCHEDULED,
            decision={
                "action": "reply",
                "channel": self.channel,
                "explain": [f"{self.channel}: answered by the worker, delivered by webhook"],
            },
            message_state=ReplyState.SCHEDULED,
        )
        scheduled = self._events.stage_reply(tx, "reply.scheduled", reply, channel=self.channel)
        return Planned(chat, message, reply, previous=previous), [scheduled]

    # --- generate ------------------------------------------------------------------------------
    async def behaviour(self, planned: Planned) -> Behaviour:
        chat = planned.chat
        overrides = planned.overrides
        if planned.started is None:  # not read with the plan
            overrides = await self._repo.behaviour_overrides(chat.account_id)
        return self._behaviours.get(chat.account_id, overrides, chat.overrides)[0]

    async def generate(self, planned: Planned, facts: Sequence[str] = ()) -> Draft | Escalation:
        """The answer (a failure records the job as failed, or cancelled, and propagates).
        `facts`: what the caller knows of the user, for this answer (the twin's facts too)."""
        reply = planned.reply
        assert reply is not None
        behaviour = await self.behaviour(planned)
        if facts:
            twin = behaviour.twin.model_copy(update={"facts": [*behaviour.twin.facts, *facts]})
            behaviour = dataclasses.replace(behaviour, twin=twin)
        started = planned.started
        try:
            return await self._generator.generate(
                reply,
                planned.chat,
                behaviour,
                [planned.message],
                rows=started.rows if started else None,
                style_read=started.style if started else None,
            )
        except BaseException as exc:
            await self.failed(reply, exc)
            raise

    async def stream(self, planned: Planned) -> AsyncIterator[str | Draft | Escalation]:
        """The answer as the model writes it: text pieces, then the Draft or Escalation.
        Closing it early (the client left) closes the provider's stream and keeps the partial
        text on the job, cancelled (`no_client`): never as an answer."""
        reply = planned.reply
        assert reply is not None
        pieces: list[str] = []
        try:
            started = planned.started
            streamed = await self._generator.stream(
                planned.chat,
                await self.behaviour(planned),
                rows=started.rows if started else None,
                style_read=started.style if started else None,
            )
            try:
                async for piece in streamed.stream:
                    pieces.append(piece)
                    yield piece
            finally:
                await streamed.stream.aclose()
            draft = streamed.finish()
        except BaseException as exc:
            await self.failed(reply, exc, "".join(pieces))
            raise
        yield draft

    # --- deliver -------------------------------------------------------------------------------
    async def deliver(
        self, planned: Planned, draft: Draft | Escalation, also: Also | None = None
    ) -> Answer:
        """Deliver = the answer stored as sent, with its usage, before the response leaves.
        `also(tx, reply, message_id)` runs in the same transaction (a webhook's outbox row)."""
        reply, chat = planned.reply, planned.chat
        assert reply is not None
        if isinstance(draft, Escalation):
            return await self._escalated(planned, draft, also)
        now = self._clock.now()
        channel = self.channel

        def sent(tx: Tx) -> list[StagedEvent]:
            if draft.summary:
                tx.update_chat(chat.id, **draft.summary)
            bubble = tx.add_outgoing(
                reply.account_id,
                chat.id,
                text=draft.text,
                reply_id=reply.id,
                bubble_index=0,
                state=ReplyState.SENT,
                date=now,
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
            if also is not None:
                also(tx, done, bubble.id)
            return [self._events.stage_reply(tx, "reply.sent", done, bubbles=1, channel=channel)]

        self._events.publish(*await self._repo.transaction(sent))
        thread = chat.external_id or ""
        return Answer(draft.text, thread, False, reply.id, draft.flags, draft.usage)

    async def _escalated(
        self, planned: Planned, escalation: Escalation, also: Also | None = None
    ) -> Answer:
        """The brain handed the conversation to the owner: pause it until resumed."""
        reply, chat = planned.reply, planned.chat
        assert reply is not None
        text = escalation.reply.text or ""
        reason = SkipReason.ESCALATED.value
        thread = chat.external_id or ""
        channel = self.channel
        random_id = new_random_id()  # the owner's note: stored before it is sent

        def escalate(tx: Tx) -> list[StagedEvent]:
            if escalation.summary:
                tx.update_chat(chat.id, **escalation.summary)
            tx.update_chat(chat.id, paused_until=PAUSED_FOREVER)
            bubble = None
            if text:
                bubble = tx.add_outgoing(
                    reply.account_id,
                    chat.id,
                    text=text,
                    reply_id=reply.id,
                    bubble_index=0,
                    state=ReplyState.SENT,
                    date=self._clock.now(),
                )
            done = tx.update_reply(
                reply.id,
                expect_state=ReplyState.GENERATING,
                state=ReplyState.SKIPPED,
                reason=reason,
                text=text or None,
                flags={**escalation.flags, "notify_random_id": random_id},
                lease_until=None,
                **escalation.usage,
            )
            tx.finish_reply_messages(reply.id, ReplyState.SKIPPED, reason)
            if also is not None:
                also(tx, done, bubble.id if bubble is not None else None)
            return [
                self._events.stage_reply(tx, "reply.skipped", done, reason=reason),
                self._events.stage(
                    tx,
                    "conversation.escalated",
                    {"chat": chat.peer_id, "thread": thread, "channel": channel, "reply": reply.id},
                    account_id=reply.account_id,
                    chat_id=chat.id,
                ),
            ]

        self._events.publish(*await self._repo.transaction(escalate))
        if self._notifier is not None:
            note = escalation_note(
                channel,
                self._name,
                thread,
                chat.peer_id,
                chat.title,
                escalation.reply.intent,
                planned.message.text or "",
            )
            self._notifier.notify(
                EscalationNote(
                    self._twin_id,
                    self._twin == "default",
                    note,
                    random_id,
                    reply.id,
                    self._notify,
                )
            )
        return Answer(text, thread, True, reply.id, escalation.flags, escalation.usage)

    async def failed(self, reply: ReplyRecord, exc: BaseException, partial: str = "") -> None:
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
