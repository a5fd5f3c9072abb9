"""One reply job from its claim to its next resting state (done, rescheduled or failed):
read → check → `generating` → generate → `sending` with the staged parts → deliver. Each state
is committed before the side effect that follows it; errors end in an outcome."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.domain.decide import AccountPolicy, Action, owner_took_over
from twin.domain.models import Direction, Failure, MessageKind, ReplyState, SkipReason
from twin.domain.safety import AccountMode
from twin.errors import (
    AdapterError,
    Conflict,
    RateLimited,
    StorageUnavailable,
    TwinError,
    Unauthorized,
)
from twin.ports import Clock, Store, Tx
from twin.services.events import EventLog, StagedEvent
from twin.services.pipeline.caches import Behaviours, Styles, with_timing
from twin.services.pipeline.deliver import Delivery
from twin.services.pipeline.fastpath import FastPath, started_tx
from twin.services.pipeline.generate import Escalation, Generator, Unanswerable
from twin.services.pipeline.outcome import Outcomes, failure_reason
from twin.services.pipeline.records import Draft, Prepared, Sending, Started
from twin.services.pipeline.runs import Run, Runs
from twin.services.pipeline.states import BEFORE_SENDING, ModeOf, no_modes, off_reason
from twin.services.policy import Behaviour

log = logging.getLogger("twin.pipeline")


@dataclass(frozen=True, slots=True)
class Admitted:
    """A job still to be answered: its chat, linked messages, behaviour and policy, and the
    incoming messages it answers (not deleted)."""

    chat: ChatRecord
    linked: list[MessageRecord]
    behaviour: Behaviour
    policy: AccountPolicy
    incoming: list[MessageRecord]


class ChannelDelivery(Protocol):
    """A channel whose jobs the worker answers and the channel delivers (the external
    messenger: its webhook outbox). The pipeline admits, starts and generates as for Telegram;
    the channel records the answer (or the escalation) and its delivery in one transaction."""

    def turn(self, chat_id: int) -> AbstractAsyncContextManager[None]:
        """One job of a conversation (a chats row) at a time, in order."""
        ...

    async def deliver(
        self,
        reply: ReplyRecord,
        chat: ChatRecord,
        incoming: list[MessageRecord],
        result: Draft | Escalation,
    ) -> None: ...


class Executor:
    def __init__(
        self,
        *,
        repo: Store,
        events: EventLog,
        clock: Clock,
        behaviours: Behaviours,
        styles: Styles,
        generator: Generator,
        delivery: Delivery,
        outcomes: Outcomes,
        fast: FastPath,
        runs: Runs,
    ) -> None:
        self._repo = repo
        self._events = events
        self._clock = clock
        self._behaviours = behaviours
        self._styles = styles
        self._generator = generator
        self._delivery = delivery
        self._outcomes = outcomes
        self._fast = fast
        self._runs = runs
        # Channels other than Telegram whose jobs the worker answers (lifecycle registers them).
        self.channels: dict[str, ChannelDelivery] = {}
        self.modes: ModeOf = no_modes  # each account's mode (lifecycle: the safety governor)

    def job_context(self, tx: Tx, reply: ReplyRecord) -> Prepared | None:
        """Inside the transaction that claims `reply`: what its first step would read (the
        worker reads it for a whole batch of jobs in one round trip). A channel job reads once
        its conversation's turn comes (`_channel_job`)."""
        if reply.decision.get("channel", "telegram") in self.channels:
            return None
        return self._read_tx(tx, reply) if reply.state in BEFORE_SENDING else None

    async def execute(self, reply: ReplyRecord, prepared: Prepared | None = None) -> None:
        """Run one claimed job to its next resting state. `prepared`: what its first step
        would read, read when it was handed over."""
        outcomes = self._outcomes
        with self._runs.running(reply.id, reply.chat_id) as run:
            try:
                sending = None
                if reply.state in BEFORE_SENDING:
                    sending = await self._generate(reply, run, prepared)
                    if sending is None:
                        return
                    reply = sending.reply
                if reply.state is ReplyState.SENDING:
                    sending = sending or await self._resume(reply)
                    if sending is not None:
                        await self._delivery.deliver(sending, run)
            except StorageUnavailable:
                raise  # nothing can be recorded now: the worker resumes the job when it can
            except Conflict:
                log.debug("reply %s changed under us (cancelled?); stopping", reply.id)
            except Unanswerable:
                await outcomes.unanswerable(reply)  # no retry can help: skip or escalate
            except (AdapterError, RateLimited, Unauthorized) as exc:
                if isinstance(exc, Unauthorized) or (
                    isinstance(exc, AdapterError) and not exc.transient
                ):
                    # A refusal no retry can change (an invalid request, a peer that blocked
                    # the owner, an account that is logged out — a reconnect is
                    # TelegramUnavailable): fail now, with the dependency's own reason, never
                    # re-queued by itself.
                    await outcomes.fail(reply, failure_reason(exc), Failure.PERMANENT)
                else:
                    await outcomes.retry_later(reply, exc)
            except TwinError as exc:
                await outcomes.fail(reply, type(exc).__name__, Failure.PERMANENT)
            except Exception:
                log.exception("reply %s failed unexpectedly", reply.id)
                await outcomes.fail(reply, "internal_error", Failure.PERMANENT)

    async def _generate(
        self, reply: ReplyRecord, run: Run, prepared: Prepared | None
    ) -> Sending | None:
        """read → (transcribe) → generate → stage the parts: three round trips to the
        database (what to answer, unless read when the job was handed over; the move to
        `generating` with the history; the parts with the move to `sending`), each state
        committed before the side effect that follows it."""
        channel = self.channels.get(reply.decision.get("channel", "telegram"))
        if channel is not None:
            async with channel.turn(reply.chat_id):
                await self._channel_job(channel, reply)
            return None
        if prepared is None:
            prepared = await self._repo.transaction(lambda tx: self._read_tx(tx, reply))
        admitted = await self._admit(reply, prepared)
        if admitted is None:
            return None
        chat, behaviour, incoming = admitted.chat, admitted.behaviour, admitted.incoming
        # Draft mode sends nothing, not even the read receipt: the chat stays unread for the
        # owner, who answers it.
        drafting = self._drafting(reply, behaviour)
        opening = (
            None
            if drafting
            else self._fast.read_ahead(await self._delivery.open(reply, chat, incoming))
        )
        if prepared.started is not None and reply.state is ReplyState.GENERATING:
            started: Started | None = prepared.started  # by the transaction that created it
        else:
            reply, started = await self._start(reply, chat, incoming)
        approved = reply.decision.get("approved_text")
        result = (
            # The owner's draft, sent as written or edited: the model is not asked again.
            Draft(str(approved), False, {"draft": reply.decision.get("draft_id")})
            if approved is not None
            else await self._generator.generate(
                reply,
                chat,
                behaviour,
                incoming,
                started.rows if started else None,
                started.style if started else None,
            )
        )
        if isinstance(result, Escalation):
            await self._outcomes.escalate(reply, chat, result)
            return None
        if run.cancelled.is_set():
            if result.summary:
                await self._repo.update_chat(chat.id, **result.summary)
            return None
        if opening is not None:
            await opening  # read before the reply exists; a failure retries the generation
        if drafting:
            await self._outcomes.drafted(reply, chat, result, behaviour.twin)
            return None
        reply, parts = await self._enter_sending(reply, chat, behaviour, admitted.linked, result)
        # typing at the owner's learned speed ([humanize] learned): generation parsed the profile
        policy = with_timing(admitted.policy, self._styles.timing(reply.account_id))
        return Sending(reply, chat, policy, parts)

    async def _channel_job(self, channel: ChannelDelivery, reply: ReplyRecord) -> None:
        """A job of a channel that delivers itself: admitted, started and generated as any
        job (after the jobs of its conversation before it), recorded and delivered by it.
        Read once its turn came (the job may have changed while it waited)."""
        current, prepared = await self._repo.transaction(
            lambda tx: (tx.get_reply(reply.id), self._read_tx(tx, reply))
        )
        if current.state not in BEFORE_SENDING:
            return
        admitted = await self._admit(current, prepared)
        if admitted is None:
            return
        current, started = await self._start(current, admitted.chat, admitted.incoming)
        result = await self._generator.generate(
            current,
            admitted.chat,
            admitted.behaviour,
            admitted.incoming,
            started.rows if started else None,
            started.style if started else None,
        )
        await channel.deliver(current, admitted.chat, admitted.incoming, result)

    def _read_tx(self, tx: Tx, reply: ReplyRecord) -> Prepared:
        return Prepared(
            tx.get_chat(reply.chat_id),
            tx.behaviour_overrides(reply.account_id),
            tx.reply_messages(reply.id),
        )

    async def _admit(self, reply: ReplyRecord, prepared: Prepared) -> Admitted | None:
        """Whether the job is still to be answered now; if not, its outcome (None): the twin
        was turned off, the chat paused, or every message it answers deleted. Else the chat,
        the linked messages, the behaviour and the incoming messages to answer."""
        chat, linked = prepared.chat, prepared.linked
        self._events.remember_chat(chat.id, chat.peer_id)
        channel = reply.decision.get("channel", "telegram")
        if channel != "telegram" and channel not in self.channels:
            # Answered in an HTTP request that is gone (the process died in it): no client
            # is left to deliver to, and Telegram is not this conversation's channel.
            return await self._outcomes.cancel(reply, SkipReason.NO_CLIENT.value)
        behaviour, policy = self._behaviours.get(
            reply.account_id, prepared.overrides, chat.overrides
        )
        if not behaviour.twin.enabled or behaviour.twin.mode == "off":
            return await self._outcomes.skip(reply, SkipReason.DISABLED.value)
        if off_reason(self.modes(reply.account_id)) is not None:
            return await self._outcomes.skip(reply, SkipReason.ACCOUNT_OFF.value)
        if chat.is_paused(self._clock.now()):
            return await self._outcomes.cancel(reply, SkipReason.PAUSED.value)
        incoming = [
            m
            for m in linked
            if m.direction is Direction.INCOMING and m.state is not ReplyState.CANCELLED
        ]
        if not incoming:
            return await self._outcomes.cancel(reply, SkipReason.DELETED.value)
        if await self._owner_took_over(chat, incoming):
            twin = behaviour.twin
            return await self._outcomes.owner_took_over(
                reply, chat, twin.takeover_minutes, twin.takeover_max_minutes
            )
        return Admitted(chat, linked, behaviour, policy, incoming)

    async def _owner_took_over(self, chat: ChatRecord, incoming: list[MessageRecord]) -> bool:
        """Whether the owner wrote in the chat after these messages (a takeover the hand-over
        never delivered: a crash came between). Dates decide; the ids only within one second,
        so the database is asked only then."""
        newest = max(incoming, key=lambda m: (m.date, m.id))
        active_at = chat.last_owner_activity_at
        if active_at is None or active_at != newest.date or newest.tg_message_id is None:
            return owner_took_over(active_at, newest.date)
        owner_id = await self._repo.last_owner_message_id(chat.account_id, chat.id)
        newest_id = newest.tg_message_id
        return owner_took_over(
            active_at, newest.date, owner_message_id=owner_id, newest_message_id=newest_id
        )

    async def _start(
        self, reply: ReplyRecord, chat: ChatRecord, incoming: list[MessageRecord]
    ) -> tuple[ReplyRecord, Started | None]:
        """Commit `generating`. The history is read with it unless voice notes must be
        transcribed first (their transcripts are part of it) or it is an away message."""
        with_history = reply.decision.get("action") != Action.AWAY.value and all(
            m.kind is MessageKind.TEXT or m.transcript for m in incoming
        )
        style_known = self._styles.known(reply.account_id)

        def start(tx: Tx) -> tuple[ReplyRecord, StagedEvent, Started | None]:
            current = tx.update_reply(
                reply.id, expect_state=BEFORE_SENDING, state=ReplyState.GENERATING
            )
            event = self._events.stage_reply(tx, "reply.generating", current)
            if not with_history:
                return current, event, None
            return current, event, started_tx(tx, reply.account_id, chat.id, style_known)

        current, event, started = await self._repo.transaction(start)
        self._events.publish(event)
        return current, started

    async def _enter_sending(
        self,
        reply: ReplyRecord,
        chat: ChatRecord,
        behaviour: Behaviour,
        linked: list[MessageRecord],
        draft: Draft,
    ) -> tuple[ReplyRecord, list[MessageRecord]]:
        """Commit `sending` with the text and the delivery's staged parts (the new summary
        too); Conflict when the reply was cancelled meanwhile (the summary is kept)."""

        def prepare(
            tx: Tx,
        ) -> tuple[ReplyRecord, list[MessageRecord], StagedEvent] | None:
            if draft.summary:
                tx.update_chat(chat.id, **draft.summary)
            try:
                current = tx.update_reply(
                    reply.id,
                    expect_state=ReplyState.GENERATING,
                    state=ReplyState.SENDING,
                    text=draft.text,
                    voice=draft.voice,
                    flags=draft.flags,
                    **draft.usage,
                )
            except Conflict:
                return None  # cancelled meanwhile: keep the summary, store no parts
            parts = self._delivery.stage_tx(tx, reply, draft, behaviour, linked)
            event = self._events.stage_reply(
                tx, "reply.sending", current, bubbles=len(parts), voice=draft.voice
            )
            return current, parts, event

        prepared = await self._repo.transaction(prepare)
        if prepared is None:
            raise Conflict(f"reply {reply.id} is no longer generating")
        current, parts, event = prepared
        self._events.publish(event)
        return current, parts

    def _mode_is(self, reply: ReplyRecord, mode: AccountMode) -> bool:
        record = self.modes(reply.account_id)
        return record is not None and record.mode is mode

    def _drafting(self, reply: ReplyRecord, behaviour: Behaviour) -> bool:
        """Written for the owner, not sent: the account in draft mode (the owner's, the
        governor's) or `[twin] mode = "draft"`; never a draft the owner approved."""
        if reply.decision.get("draft_id") is not None:
            return False
        return behaviour.twin.mode == "draft" or self._mode_is(reply, AccountMode.DRAFT)

    async def _resume(self, reply: ReplyRecord) -> Sending | None:
        """A job resumed in `sending`: its parts as stored (None if it is no longer sending,
        or is cancelled now because its chat is paused)."""

        def read(
            tx: Tx,
        ) -> tuple[ReplyRecord, ChatRecord, dict[str, Any], list[MessageRecord]]:
            return (
                tx.get_reply(reply.id),
                tx.get_chat(reply.chat_id),
                tx.behaviour_overrides(reply.account_id),
                tx.reply_messages(reply.id),
            )

        current, chat, overrides, linked = await self._repo.transaction(read)
        self._events.remember_chat(chat.id, chat.peer_id)
        if current.state is not ReplyState.SENDING:
            return None
        if chat.is_paused(self._clock.now()):
            # Paused since it stopped (re-queued by recovery, or resumed after a restart): the
            # rest of its bubbles would go into a chat the owner paused.
            await self._outcomes.cancel(current, SkipReason.PAUSED.value)
            return None
        if off_reason(self.modes(reply.account_id)) is not None:
            await self._outcomes.cancel(current, SkipReason.ACCOUNT_OFF.value)
            return None
        behaviour, policy = self._behaviours.get(reply.account_id, overrides, chat.overrides)
        if self._drafting(current, behaviour):
            # Turned to draft since it stopped (a trip, the owner): the rest is not sent.
            await self._outcomes.skip(current, SkipReason.DRAFTED.value)
            return None
        parts = [
            m
            for m in linked
            if m.direction is Direction.OUTGOING
            and m.state in (ReplyState.SENDING, ReplyState.SENT)
        ]
        policy = with_timing(policy, self._styles.timing(reply.account_id))  # learned typing
        return Sending(reply, chat, policy, parts)
