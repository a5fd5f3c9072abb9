"""Plan: store the message once, decide with the pure policy, persist the job — one
transaction (a message is never recorded without its decision)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.domain.decide import AccountPolicy, Action, ChatState, Decision, decide
from twin.domain.models import ChatKind, IncomingMessage, ReplyState, Sender
from twin.domain.policies.rate_limits import WINDOW as RATE_WINDOW
from twin.errors import Conflict
from twin.ports import Clock, Store, Tx
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.intake import Stored, store_incoming_tx
from twin.services.pipeline.caches import Behaviours, Styles, with_timing
from twin.services.pipeline.fastpath import FastPath
from twin.services.pipeline.records import Prepared
from twin.services.pipeline.runs import Runs
from twin.services.pipeline.states import ModeOf, no_modes, off_reason

log = logging.getLogger("twin.pipeline")

StoreWork = Callable[[Tx], Stored]
# (events to publish, the job handed over or None, what its first step reads)
Planned = tuple[list[StagedEvent], ReplyRecord | None, Prepared | None]


class Planner:
    def __init__(
        self,
        *,
        repo: Store,
        events: EventLog,
        clock: Clock,
        directory: AccountDirectory,
        behaviours: Behaviours,
        styles: Styles,
        fast: FastPath,
        runs: Runs,
        wake: asyncio.Event,
        answers: bool,
        rng: random.Random,
    ) -> None:
        self._repo = repo
        self._events = events
        self._clock = clock
        self._directory = directory
        self._behaviours = behaviours
        self._styles = styles
        self._fast = fast
        self._runs = runs
        self._wake = wake
        self._answers = answers  # a brain is configured: replies can be generated
        self._rng = rng
        self.modes: ModeOf = no_modes  # each account's mode (lifecycle: the safety governor)

    async def on_new_message(self, message: IncomingMessage, account_id: int) -> bool:
        """Store a received message and decide what to do about it in one transaction, then
        hand the job over. Returns whether the message was new."""

        def store(tx: Tx) -> Stored:
            return store_incoming_tx(tx, self._events, account_id, message)

        return await self._plan_locked(message, account_id, store)

    async def plan_stored(self, since: datetime) -> int:
        """Decide on stored incoming messages that have neither a decision nor a reply job
        (dated `since` or later): what an interrupted intake, or a command of an older version
        that stored without planning, left behind. Run at start-up; returns how many."""
        planned = 0
        for record in await self._repo.unplanned_incoming(since):
            chat = await self._repo.get_chat(record.chat_id)
            message = incoming_of(await self._directory.name_of(record.account_id), chat, record)

            def store(tx: Tx, record: MessageRecord = record, chat: ChatRecord = chat) -> Stored:
                return self._recover_tx(tx, record, chat)

            if await self._plan_locked(message, record.account_id, store):
                planned += 1
        if planned:
            log.info("planned %d stored message(s) that had no decision", planned)
        return planned

    def _recover_tx(self, tx: Tx, record: MessageRecord, chat: ChatRecord) -> Stored:
        current = tx.unplanned_message(record.id)
        if current is None:
            return None  # planned meanwhile
        event = self._events.stage(
            tx,
            "message.recovered",
            {"chat": chat.peer_id, "message_id": record.tg_message_id},
            account_id=record.account_id,
            chat_id=record.chat_id,
        )
        return tx.get_chat(record.chat_id), False, current, event

    async def _plan_locked(
        self, message: IncomingMessage, account_id: int, store: StoreWork
    ) -> bool:
        async with self._runs.lock(account_id, message.chat_id):
            handed_over = await self._plan(message, account_id, store)
        if handed_over is None:
            return False
        if not handed_over:
            self._wake.set()
        return True

    async def _plan(
        self, message: IncomingMessage, account_id: int, store: StoreWork
    ) -> bool | None:
        """One round trip to the database: store the message, read what the decision needs,
        decide (pure), store the outcome (the chat's activity, the job or the skip, events).
        Returns whether the job was handed over (fast path), None if stored before."""
        now = self._clock.now()
        self._directory.remember(message.account, account_id)
        lease_until = self._fast.lease(now)
        style_known = self._styles.known(account_id)

        def plan(tx: Tx) -> Planned | None:
            stored = store(tx)
            if stored is None:
                return None
            chat, chat_created, record, received = stored
            events, claimed, prepared = self._plan_tx(
                tx, message, chat, record, chat_created, now, lease_until, style_known
            )
            return [received, *events], claimed, prepared

        outcome = await self._repo.transaction(plan)
        if outcome is None:
            return None
        events, claimed, prepared = outcome
        self._events.publish(*events)
        if claimed is None or prepared is None:
            return False
        self._fast.submit(claimed, prepared)
        return True

    def _plan_tx(
        self,
        tx: Tx,
        message: IncomingMessage,
        chat: ChatRecord,
        record: MessageRecord,
        chat_created: bool,
        now: datetime,
        lease_until: datetime | None,
        style_known: datetime | None,
    ) -> Planned:
        account_id = record.account_id
        overrides = tx.behaviour_overrides(account_id)
        behaviour, policy = self._behaviours.get(account_id, overrides, chat.overrides)
        off = off_reason(self.modes(account_id))
        if off is not None:
            policy = dataclasses.replace(policy, off_reason=off)
        if policy.humanize.learned:  # the owner's reply timing of the stored style profile
            policy = with_timing(policy, self._styles.timing_tx(tx, account_id))
        pending = tx.pending_reply(chat.id)
        decision = decide(
            policy,
            message,
            chat_state(tx, chat, chat_created, pending, policy, now),
            now=now,
            rng=self._rng,
        )
        skip_reason, updated_chat = self._activity_tx(tx, chat, message, decision, now)
        if skip_reason is not None:
            return [self._skip_tx(tx, record, decision, skip_reason)], None, None
        if pending is not None and _joins(pending, decision):
            event = self._debounce_tx(tx, pending, record, message, decision, now)
            if event is not None:
                return [event], None, None
        handed_over = lease_until is not None and decision.reply_at <= now
        start = handed_over and self._fast.starts(decision, message, behaviour)
        reply = tx.create_reply(
            account_id,
            chat.id,
            reply_at=decision.reply_at,
            message_ids=[record.id],
            state=ReplyState.GENERATING if start else ReplyState.SCHEDULED,
            decision=decision_json(decision, message),
            message_state=ReplyState.SCHEDULED,
            lease_until=lease_until if handed_over else None,
        )
        scheduled = self._events.stage_reply(
            tx,
            "reply.scheduled",
            reply,
            message_id=message.message_id,
            action=decision.action.value,
            reply_at=reply.reply_at.isoformat(),
            delay_s=delay(reply.reply_at, now),
            explain=list(decision.explain),
        )
        if not handed_over:
            return [scheduled], None, None
        linked = dataclasses.replace(record, state=ReplyState.SCHEDULED, reply_id=reply.id)
        events, prepared = self._fast.hand_over_tx(
            tx, self._events, reply, Prepared(updated_chat, overrides, [linked]), start, style_known
        )
        return [scheduled, *events], reply, prepared

    def _activity_tx(
        self,
        tx: Tx,
        chat: ChatRecord,
        message: IncomingMessage,
        decision: Decision,
        now: datetime,
    ) -> tuple[str | None, ChatRecord]:
        """Store the chat's activity; the reason the message is skipped (None: answered)."""
        activity: dict[str, Any] = {"last_incoming_at": message.date}
        skip_reason = None
        if not self._answers and decision.action in (Action.REPLY, Action.DEFER):
            skip_reason = "llm_not_configured"
        elif decision.action is Action.SKIP:
            skip_reason = decision.skip_reason.value if decision.skip_reason else "skipped"
        elif decision.action is Action.AWAY:
            # Recorded now, not when sent: a burst outside hours gets one away message.
            activity["last_away_at"] = now
        return skip_reason, tx.update_chat(chat.id, **activity)

    def _skip_tx(
        self, tx: Tx, record: MessageRecord, decision: Decision, reason: str
    ) -> StagedEvent:
        tx.update_message(record.id, state=ReplyState.SKIPPED, state_reason=reason)
        return self._events.stage(
            tx,
            "message.skipped",
            {
                "message_id": record.tg_message_id,
                "reason": reason,
                "explain": list(decision.explain),
            },
            account_id=record.account_id,
            chat_id=record.chat_id,
        )

    def _debounce_tx(
        self,
        tx: Tx,
        pending: ReplyRecord,
        record: MessageRecord,
        message: IncomingMessage,
        decision: Decision,
        now: datetime,
    ) -> StagedEvent | None:
        """One answer to a quick burst: the window restarts on each message. A job that started
        generating meanwhile is left alone (None): a new one answers this."""
        try:
            reply = tx.update_reply(
                pending.id,
                expect_state=(ReplyState.RECEIVED, ReplyState.SCHEDULED),
                reply_at=decision.reply_at,
                decision={**pending.decision, "explain": list(decision.explain)},
            )
        except Conflict:
            return None
        tx.attach_messages(pending.id, [record.id], message_state=ReplyState.SCHEDULED)
        return self._events.stage_reply(
            tx,
            "reply.rescheduled",
            reply,
            message_id=message.message_id,
            reply_at=reply.reply_at.isoformat(),
            delay_s=delay(reply.reply_at, now),
        )


def _replying(pending: ReplyRecord) -> bool:  # an owner's approved draft is joined by nothing
    decision = pending.decision
    return decision.get("action") == Action.REPLY.value and "draft_id" not in decision


def _joins(pending: ReplyRecord, decision: Decision) -> bool:
    """Whether the message joins the chat's pending reply (one answer to a burst): a reply
    debounced, or the messages deferred to the end of the owner's takeover."""
    if decision.action is Action.REPLY:
        return _replying(pending)
    return decision.takeover_resume and bool(pending.decision.get("takeover_resume"))


def chat_state(
    tx: Tx,
    chat: ChatRecord,
    chat_created: bool,
    pending: ReplyRecord | None,
    policy: AccountPolicy,
    now: datetime,
) -> ChatState:
    """What `decide()` knows of the chat."""
    limits = policy.rate_limits
    pending_since = None
    if pending is not None and _replying(pending):
        pending_since = datetime.fromisoformat(pending.decision["first_message_at"])
    account_id = chat.account_id
    return ChatState(
        chat_is_new=chat_created,
        paused_until=chat.paused_until,
        last_away_at=chat.last_away_at,
        last_incoming_at=chat.last_incoming_at,
        last_outgoing_at=last_outgoing(chat, pending),
        greeting_pending=pending is not None and bool(pending.decision.get("greeting")),
        chat_reply_times=tuple(reply_times(tx, account_id, now, chat.id, limits.per_chat_per_hour)),
        account_reply_times=tuple(
            reply_times(tx, account_id, now, None, limits.per_account_per_hour)
        ),
        pending_since=pending_since,
        takeover_since=chat.takeover_since(now),
        owner_active_at=owner_active_at(tx, account_id, now) if policy.away.offline_only else None,
    )


def last_outgoing(chat: ChatRecord, pending: ReplyRecord | None) -> datetime | None:
    """The newest message the chat has from this side: sent by the twin, written by the owner,
    or a reply still to be sent (at its reply_at). A greeting needs the chat silent both ways,
    and a reply on its way means it is not: a contact writing again during a long deferral
    (a vacation) is not greeted twice."""
    times = (chat.last_outgoing_at, chat.last_owner_activity_at)
    if pending is not None:
        times += (pending.reply_at,)
    return max((t for t in times if t is not None), default=None)


def owner_active_at(tx: Tx, account_id: int, now: datetime) -> datetime | None:
    """The owner's last activity as of `now` (messages, reads, online status: `now` while
    shown online); read only for the away message's "only if offline"."""
    activity = tx.owner_activity(account_id)
    return activity.active_as_of(now) if activity is not None else None


def reply_times(
    tx: Tx, account_id: int, now: datetime, chat_id: int | None, limit: int
) -> list[datetime]:
    """The reply times `decide()` checks against a limit of `limit` per hour (0: none). The
    policy only compares their number with the limit (RateLimits / check_rate), so the
    database counts them; they are read, all of them, only when the limit is reached (its
    explanation quotes the number). A busy hour holds many: reading them all for every
    message cost more than everything else the decision does."""
    if limit <= 0:
        return []  # no limit: nothing to count
    since = now - RATE_WINDOW
    # The policy counts times strictly after `since`; the repository's `since` is inclusive:
    # one microsecond (the stored resolution) makes the count the same.
    if tx.count_replies(account_id, since + timedelta(microseconds=1), chat_id=chat_id) < limit:
        return []
    return tx.reply_times(account_id, since, chat_id=chat_id)


def incoming_of(account: str, chat: ChatRecord, record: MessageRecord) -> IncomingMessage:
    """A stored incoming message as intake would have handed it over. Groups' messages are
    stored only when they address the owner, so they count as mentions."""
    kind = ChatKind(chat.kind)
    private = kind is ChatKind.PRIVATE
    return IncomingMessage(
        account=account,
        chat_id=chat.peer_id,
        chat_kind=kind,
        message_id=record.tg_message_id or 0,
        sender=Sender(
            id=record.sender_id or chat.peer_id,
            name=chat.title or "",
            username=chat.username if private else None,
            is_contact=bool(chat.is_contact) if private else False,
            is_bot=bool(chat.is_bot) if private else False,
        ),
        date=record.date,
        text=record.text or "",
        kind=record.kind,
        duration=record.duration,
        reply_to=record.reply_to_tg_id,
        mentions_owner=not private,
        chat_title=chat.title,
    )


def delay(at: datetime, now: datetime) -> float:
    """Seconds from `now` until `at` (0 when due)."""
    return round(max(0.0, (at - now).total_seconds()), 3)


def decision_json(decision: Decision, message: IncomingMessage) -> dict[str, Any]:
    return {
        "action": decision.action.value,
        "explain": list(decision.explain),
        "greeting": decision.greeting,
        "delay_s": round(decision.delay.seconds, 3) if decision.delay else None,
        "first_message_at": message.date.isoformat(),
        "grace_until": decision.grace_until.isoformat() if decision.grace_until else None,
        "takeover_resume": decision.takeover_resume,
        "chat_kind": message.chat_kind.value if isinstance(message.chat_kind, ChatKind) else None,
    }
