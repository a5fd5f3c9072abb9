"""The reply pipeline: decide on intake, then execute durable reply jobs.

received → scheduled → generating → sending → sent | skipped(reason) | failed(reason) | cancelled

Every step is persisted before its side effect, so a crash at any point resumes correctly:
* scheduled/generating: nothing was sent; generation simply runs again.
* sending: the text and every bubble's random_id were stored before the first send. Bubbles
  already recorded as sent are skipped; the others are sent with their stored random_id, and
  Telegram answers RANDOM_ID_DUPLICATE for any that went out before the crash. So each incoming
  message gets exactly one complete reply: never zero, never two.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from twin.clock import Clock
from twin.config import Settings
from twin.domain.conversation import Persona, Turn
from twin.domain.decide import Action, ChatState, Decision, decide, takeover_until
from twin.domain.models import (
    PAUSED_FOREVER,
    ChatKind,
    Direction,
    Failure,
    IncomingMessage,
    MessageKind,
    OwnerActivity,
    ReplyState,
    Sender,
    SkipReason,
)
from twin.domain.policies.delays import bubble_pause, split_bubbles, typing_duration
from twin.domain.policies.rate_limits import WINDOW as RATE_WINDOW
from twin.errors import (
    ERROR_CHARS,
    AdapterError,
    Conflict,
    NotFound,
    RateLimited,
    StorageUnavailable,
    TwinError,
    Unauthorized,
    clip,
    describe,
)
from twin.services.chats import hold
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.outbox import new_random_id
from twin.services.policy import Behaviour, account_policy, behaviour_of
from twin.services.style import accumulator_of

log = logging.getLogger("twin.pipeline")

ACTIVE = (ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING, ReplyState.SENDING)
BEFORE_SENDING = (ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING)
HISTORY_TURNS = 200
TYPING_REFRESH = 4.5  # Telegram shows an action for ~5 s per call
_BEHAVIOUR_CACHE = 256  # distinct per-chat override documents kept per account
REASON_CHARS = 64  # replies.reason and messages.state_reason are VARCHAR(64)


@dataclass
class _Run:
    """An executing job: set `cancelled` to stop its waits at once (owner took over)."""

    reply_id: int
    chat_id: int
    cancelled: asyncio.Event


@dataclass(frozen=True)
class _Planned:
    """What the first step of a job reads (chat, stored overrides, linked messages), read
    already by whoever handed the job over: the plan step that created it claimed, or the
    worker's claim of a batch."""

    chat: Any
    overrides: dict[str, Any]
    linked: list[Any]
    # for a job created already `generating`: the conversation rows and (style version, style
    # record or None), read in the transaction that created it
    started: tuple[Any, tuple[Any, Any]] | None = None


@dataclass(frozen=True)
class _Sending:
    """A reply just moved to `sending`, with what sending it needs (no need to read it back)."""

    reply: Any
    chat: Any
    policy: Any
    bubbles: list[Any]


class ReplyPipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Any,
        events: EventLog,
        accounts: Any,
        brain: Any,
        stt: Any = None,
        tts: Any = None,
        clock: Clock,
        directory: AccountDirectory,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._events = events
        self._accounts = accounts
        self._brain = brain
        self._stt = stt
        self._tts = tts
        self._clock = clock
        self._rng = rng or random.Random()
        self._directory = directory
        self._runs: dict[int, _Run] = {}
        # per (account, peer): held only while someone waits on it
        self._chat_locks: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # Per account: the stored overrides they were built from, and per chat-override
        # document the merged Behaviour and its AccountPolicy (pydantic validation and working
        # hours are too costly to redo for every message).
        self._behaviours: dict[int, tuple[dict[str, Any], dict[str, tuple[Behaviour, Any]]]] = {}
        # Per account: the style profile's version (updated_at) and the parsed profile.
        self._styles: dict[int, tuple[Any, Any]] = {}
        self.wake = asyncio.Event()  # the worker sleeps on it: set when a job may be due sooner
        self.handoff: Any = None  # the running worker: jobs due at once go to it directly
        # (account name, chat peer id) -> the smallest id of its messages intake could not
        # store yet: the read receipt stays below it (see Intake.unstored_floor)
        self.unstored_floor: Callable[[str, int], int | None] = lambda account, peer: None
        events.subscribe(self._on_event)

    # --- helpers -------------------------------------------------------------------------------
    def _lock(self, account_id: int, peer_id: int) -> asyncio.Lock:
        key = (account_id, peer_id)
        lock = self._chat_locks.get(key)
        if lock is None:
            lock = self._chat_locks[key] = asyncio.Lock()
        return lock

    async def _account_name(self, account_id: int) -> str:
        return await self._directory.name_of(account_id)

    def invalidate(self, account_id: int | None = None) -> None:
        """Forget cached settings and style of an account (None: of every account).

        Not needed for correctness: every step reads the stored overrides and the style
        profile's version in a transaction it makes anyway, and rebuilds what changed. This
        only frees the memory at once (PUT /settings calls it through the event log)."""
        if account_id is None:
            self._behaviours.clear()
            self._styles.clear()
        else:
            self._behaviours.pop(account_id, None)
            self._styles.pop(account_id, None)

    def _on_event(self, event: Any) -> None:
        if event.type == "settings.changed":
            self.invalidate(event.account_id)

    def _behaviour(
        self, account_id: int, overrides: dict[str, Any], chat_overrides: dict[str, Any] | None
    ) -> tuple[Behaviour, Any]:
        """config.toml + the account's stored overrides + the chat's: (Behaviour, AccountPolicy),
        rebuilt only when the stored overrides differ from the ones the cache was built from."""
        cached = self._behaviours.get(account_id)
        if cached is None or cached[0] != overrides:
            cached = self._behaviours[account_id] = (overrides, {})
        key = json.dumps(chat_overrides, sort_keys=True, default=str) if chat_overrides else ""
        entry = cached[1].get(key)
        if entry is None:
            if len(cached[1]) >= _BEHAVIOUR_CACHE:
                cached[1].clear()
            behaviour = behaviour_of(self._settings, overrides, chat_overrides or None)
            entry = cached[1][key] = (behaviour, account_policy(behaviour))
        return entry

    async def behaviour(self, account_id: int, chat: Any) -> Behaviour:
        overrides = await self._repo.get_settings(account_id)
        return self._behaviour(account_id, overrides, chat.overrides)[0]

    async def _emit(self, type_: str, reply: Any, **data: Any) -> None:
        await self._events.emit(
            type_, {"reply": reply.id, **data}, account_id=reply.account_id, chat_id=reply.chat_id
        )

    # --- intake hooks --------------------------------------------------------------------------
    async def on_new_message(
        self, message: IncomingMessage, account_id: int, store: Callable[[Any], Any]
    ) -> bool:
        """Store a message (intake's `store`) and decide what to do about it in one
        transaction, then hand the job over. Returns whether the message was new."""
        async with self._lock(account_id, message.chat_id):
            planned = await self._plan(message, account_id, store)
        if planned is None:
            return False
        if not planned:
            self.wake.set()
        return True

    async def plan_stored(self, since: datetime) -> int:
        """Decide on stored incoming messages that have neither a decision nor a reply job
        (dated `since` or later): what an interrupted intake, or a command of an older version
        that stored without planning, left behind. Run at start-up; returns how many."""
        planned = 0
        for record in await self._repo.unplanned_incoming(since):
            chat = await self._repo.get_chat(record.chat_id)
            message = _incoming_of(await self._account_name(record.account_id), chat, record)

            def store(tx: Any, record: Any = record, chat: Any = chat) -> Any:
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

            async with self._lock(record.account_id, message.chat_id):
                outcome = await self._plan(message, record.account_id, store)
            if outcome is not None:
                planned += 1
                if not outcome:
                    self.wake.set()
        if planned:
            log.info("planned %d stored message(s) that had no decision", planned)
        return planned

    async def _plan(
        self, message: IncomingMessage, account_id: int, store: Callable[[Any], Any]
    ) -> bool | None:
        """One round trip to the database: store the message, read what the decision needs,
        decide (pure), store the outcome (the chat's activity, the job or the skip, and the
        events). A job due at once is created already leased and started (`generating`, with
        the conversation read) and handed straight to the worker. Returns whether it was
        handed over, None when the message was stored before."""
        now = self._clock.now()
        self._directory.remember(message.account, account_id)
        worker = self.handoff
        lease_until = worker.lease_until(now) if worker is not None else None
        style_known = self._styles.get(account_id)

        def plan(tx: Any) -> tuple[list[StagedEvent], Any, Any] | None:
            stored = store(tx)
            if stored is None:
                return None
            chat, chat_created, record, received = stored
            events, claimed, planned = self._plan_tx(
                tx, message, chat, record, chat_created, now, lease_until, style_known
            )
            return [received, *events], claimed, planned

        outcome = await self._repo.transaction(plan)
        if outcome is None:
            return None
        events, claimed, planned = outcome
        self._events.publish(*events)
        if claimed is None:
            return False
        worker.submit(claimed, planned)
        return True

    def _plan_tx(
        self,
        tx: Any,
        message: IncomingMessage,
        chat: Any,
        record: Any,
        chat_created: bool,
        now: datetime,
        lease_until: datetime | None,
        style_known: tuple[Any, Any] | None,
    ) -> tuple[list[StagedEvent], Any, Any]:
        account_id = record.account_id
        overrides = tx.get_settings(account_id)
        behaviour, policy = self._behaviour(account_id, overrides, chat.overrides)
        limits = policy.rate_limits
        pending = tx.pending_reply(chat.id)
        pending_since = None
        if pending is not None and pending.decision.get("action") == Action.REPLY.value:
            pending_since = datetime.fromisoformat(pending.decision["first_message_at"])
        state = ChatState(
            chat_is_new=chat_created,
            paused_until=chat.paused_until,
            last_away_at=chat.last_away_at,
            last_incoming_at=chat.last_incoming_at,
            chat_reply_times=tuple(
                _reply_times(tx, account_id, now, chat.id, limits.per_chat_per_hour)
            ),
            account_reply_times=tuple(
                _reply_times(tx, account_id, now, None, limits.per_account_per_hour)
            ),
            pending_since=pending_since,
        )
        decision = decide(policy, message, state, now=now, rng=self._rng)
        activity: dict[str, Any] = {"last_incoming_at": message.date}
        skip_reason = None
        if self._brain is None and decision.action in (Action.REPLY, Action.DEFER):
            skip_reason = "llm_not_configured"
        elif decision.action is Action.SKIP:
            skip_reason = decision.skip_reason.value if decision.skip_reason else "skipped"
        elif decision.action is Action.AWAY:
            # Recorded now, not when sent: a burst outside hours gets one away message.
            activity["last_away_at"] = now
        updated_chat = tx.update_chat(chat.id, **activity)
        if skip_reason is not None:
            tx.update_message(record.id, state=ReplyState.SKIPPED, state_reason=skip_reason)
            event = self._events.stage(
                tx,
                "message.skipped",
                {
                    "message_id": record.tg_message_id,
                    "reason": skip_reason,
                    "explain": list(decision.explain),
                },
                account_id=record.account_id,
                chat_id=record.chat_id,
            )
            return [event], None, None
        if (
            pending is not None
            and decision.action is Action.REPLY
            and pending.decision.get("action") == Action.REPLY.value
        ):
            # Debounce: one answer to a quick burst; the window restarts on each message.
            # A job that started generating meanwhile is left alone: a new one answers this.
            try:
                reply = tx.update_reply(
                    pending.id,
                    expect_state=(ReplyState.RECEIVED, ReplyState.SCHEDULED),
                    reply_at=decision.reply_at,
                    decision={**pending.decision, "explain": list(decision.explain)},
                )
            except Conflict:
                pass
            else:
                tx.attach_messages(pending.id, [record.id], message_state=ReplyState.SCHEDULED)
                event = self._events.stage_reply(
                    tx,
                    "reply.rescheduled",
                    reply,
                    message_id=message.message_id,
                    reply_at=reply.reply_at.isoformat(),
                    delay_s=_delay(reply.reply_at, now),
                )
                return [event], None, None
        handed_over = lease_until is not None and decision.reply_at <= now
        # Started at once (no separate step to move it to `generating`) when nothing has to
        # happen first: a text to answer, by a twin that is on (voice notes are transcribed
        # before the conversation is read; an away message needs no conversation).
        start = (
            handed_over
            and decision.action is Action.REPLY
            and message.kind is MessageKind.TEXT
            and behaviour.twin.enabled
        )
        reply = tx.create_reply(
            account_id,
            chat.id,
            reply_at=decision.reply_at,
            message_ids=[record.id],
            state=ReplyState.GENERATING if start else ReplyState.SCHEDULED,
            decision=_decision_json(decision, message),
            message_state=ReplyState.SCHEDULED,
            lease_until=lease_until if handed_over else None,
        )
        events = [
            self._events.stage_reply(
                tx,
                "reply.scheduled",
                reply,
                message_id=message.message_id,
                action=decision.action.value,
                reply_at=reply.reply_at.isoformat(),
                delay_s=_delay(reply.reply_at, now),
                explain=list(decision.explain),
            )
        ]
        if not handed_over:
            return events, None, None
        linked = dataclasses.replace(record, state=ReplyState.SCHEDULED, reply_id=reply.id)
        started = None
        if start:
            events.append(self._events.stage_reply(tx, "reply.generating", reply))
            started = _started_tx(tx, account_id, chat.id, style_known)
        return events, reply, _Planned(updated_chat, overrides, [linked], started)

    async def on_owner_activity(self, activity: OwnerActivity, chat: Any) -> None:
        """The owner wrote in this chat: step back (pause) and cancel what was pending."""
        behaviour = await self.behaviour(chat.account_id, chat)
        until = takeover_until(self._clock.now(), behaviour.twin.takeover_minutes)
        if until is not None:
            await hold(self._repo, self.cancel_pending, chat.account_id, chat.id, until)
        else:  # takeover_minutes = 0: no pause, but what was pending is still the owner's
            await self.cancel_pending(chat.account_id, chat.id, SkipReason.PAUSED.value)

    async def cancel_pending(self, account_id: int, chat_id: int, reason: str) -> int:
        """Cancel the chat's unfinished replies (a half-sent one stops after its current
        bubble). Returns how many were cancelled."""
        cancelled = 0
        for reply in await self._repo.unfinished_replies(account_id):
            if reply.chat_id != chat_id:
                continue
            if self._events.peer_of(chat_id) is None:  # for its log line (twin.services.activity)
                chat = await self._repo.get_chat(chat_id)
                self._events.remember_chat(chat.id, chat.peer_id)
            run = self._runs.get(reply.id)
            if run is not None:
                # Before the database knows: a running job checks this flag right before each
                # send, so it can never send once the cancellation is committed. (If the job
                # finishes first and the update below conflicts, the flag is moot.)
                run.cancelled.set()
            try:
                _, event = await self._repo.transaction(
                    lambda tx, reply_id=reply.id: self._finish_tx(
                        tx, reply_id, ReplyState.CANCELLED, reason, "reply.cancelled"
                    )
                )
            except Conflict:
                continue
            self._events.publish(event)
            cancelled += 1
        return cancelled

    async def on_edited(self, account: str, peer_id: int, tg_message_id: int, text: str) -> None:
        """An edit before the reply is generated is simply what the brain will read."""
        account_id = await self._id_of(account)
        try:
            chat = await self._repo.get_chat_by_peer(account_id, peer_id)
            message = await self._repo.get_message_by_tg(account_id, chat.id, tg_message_id)
        except NotFound:
            return
        await self._repo.update_message(message.id, text=text)
        await self._events.emit(
            "message.edited",
            {"chat": peer_id, "message_id": tg_message_id},
            account_id=account_id,
            chat_id=chat.id,
        )

    async def on_deleted(self, account: str, peer_id: int | None, tg_ids: list[int]) -> None:
        """Deleted before the answer went out: drop them; a reply left with nothing is cancelled."""
        account_id = await self._id_of(account)
        chat_id = None
        if peer_id is not None:  # channels/supergroups say where; private chats do not
            try:
                chat_id = (await self._repo.get_chat_by_peer(account_id, peer_id)).id
            except NotFound:
                return
        affected: set[int] = set()
        peers: dict[int, int] = {}  # chat id -> peer id (private chats' deletions do not say)
        for message in await self._repo.incoming_by_tg_ids(account_id, tg_ids, chat_id=chat_id):
            await self._repo.update_message(
                message.id, state=ReplyState.CANCELLED, state_reason=SkipReason.DELETED.value
            )
            if message.chat_id not in peers:
                peers[message.chat_id] = (await self._repo.get_chat(message.chat_id)).peer_id
            await self._events.emit(
                "message.deleted",
                {"chat": peers[message.chat_id], "message_id": message.tg_message_id},
                account_id=account_id,
                chat_id=message.chat_id,
            )
            if message.reply_id is not None:
                affected.add(message.reply_id)
        for reply_id in affected:
            remaining = [
                m
                for m in await self._repo.reply_messages(reply_id)
                if m.direction is Direction.INCOMING and m.state is not ReplyState.CANCELLED
            ]
            if not remaining:
                with contextlib.suppress(Conflict):
                    reply = await self._repo.update_reply(
                        reply_id,
                        expect_state=BEFORE_SENDING,
                        state=ReplyState.CANCELLED,
                        reason=SkipReason.DELETED.value,
                    )
                    await self._emit("reply.cancelled", reply, reason=SkipReason.DELETED.value)

    async def _id_of(self, account: str) -> int:
        return await self._directory.id_of(account)

    # --- execution -----------------------------------------------------------------------------
    def job_context(self, tx: Any, reply: Any) -> _Planned | None:
        """Inside the transaction that claims `reply`: what its first step would read (the
        worker reads it for a whole batch of jobs in one round trip)."""
        if reply.state not in BEFORE_SENDING:
            return None
        return _Planned(
            tx.get_chat(reply.chat_id),
            tx.get_settings(reply.account_id),
            tx.reply_messages(reply.id),
        )

    async def execute(self, reply: Any, planned: _Planned | None = None) -> None:
        """Run one claimed job to its next resting state (done, rescheduled or failed).
        `planned`: what its first step would read, read when it was handed over."""
        run = _Run(reply.id, reply.chat_id, asyncio.Event())
        self._runs[reply.id] = run
        try:
            sending = None
            if reply.state in BEFORE_SENDING:
                sending = await self._generate(reply, run, planned)
                if sending is None:
                    return
                reply = sending.reply
            if reply.state is ReplyState.SENDING:
                await self._send(reply, run, sending)
        except StorageUnavailable:
            raise  # nothing can be recorded now: the worker resumes the job when it can
        except Conflict:
            log.debug("reply %s changed under us (cancelled?); stopping", reply.id)
        except _Unanswerable:
            await self._unanswerable(reply)  # no retry can help: skip or escalate, at once
        except (AdapterError, RateLimited, Unauthorized) as exc:
            if isinstance(exc, Unauthorized) or (
                isinstance(exc, AdapterError) and not exc.transient
            ):
                # A refusal no retry can change (an invalid request, a peer that blocked the
                # owner, an account that is logged out — a reconnect is TelegramUnavailable):
                # fail now, with the dependency's own reason, never re-queued by itself.
                await self._fail(reply, failure_reason(exc), Failure.PERMANENT)
            else:
                await self._retry_later(reply, exc)
        except TwinError as exc:
            await self._fail(reply, type(exc).__name__, Failure.PERMANENT)
        except Exception:
            log.exception("reply %s failed unexpectedly", reply.id)
            await self._fail(reply, "internal_error", Failure.PERMANENT)
        finally:
            self._runs.pop(reply.id, None)

    async def _generate(
        self, reply: Any, run: _Run, planned: _Planned | None = None
    ) -> _Sending | None:
        """read → (transcribe) → generate → persist the bubbles: three round trips to the
        database (what to answer, unless read when the job was handed over; the move to
        `generating` with the history; the bubbles and their random_ids with the move to
        `sending`), each state committed before the side effect that follows it."""
        now = self._clock.now()
        started = None
        if planned is not None:
            chat, overrides, linked = planned.chat, planned.overrides, planned.linked
            started = planned.started
        else:

            def read(tx: Any) -> tuple[Any, ...]:
                return (
                    tx.get_chat(reply.chat_id),
                    tx.get_settings(reply.account_id),
                    tx.reply_messages(reply.id),
                )

            chat, overrides, linked = await self._repo.transaction(read)
        self._events.remember_chat(chat.id, chat.peer_id)
        behaviour, policy = self._behaviour(reply.account_id, overrides, chat.overrides)
        if not behaviour.twin.enabled:
            return await self._skip(reply, SkipReason.DISABLED.value)
        if chat.is_paused(now):
            return await self._cancel(reply, SkipReason.PAUSED.value)
        incoming = [
            m
            for m in linked
            if m.direction is Direction.INCOMING and m.state is not ReplyState.CANCELLED
        ]
        action = reply.decision.get("action", Action.REPLY.value)
        if not incoming:
            return await self._cancel(reply, SkipReason.DELETED.value)
        account = await self._accounts.get(await self._account_name(reply.account_id))
        account.require_authorized()
        # The contact sees "read" first, as when a person opens the chat. The request goes out
        # now and its answer is awaited only before the reply is committed to sending: the
        # round trip overlaps generation instead of adding to every reply's latency. Never
        # past a message intake could not store yet: a chat marked read past it would hide it
        # from the reconciliation sweep's "unread" view and from the owner.
        read_upto = max(m.tg_message_id for m in incoming)
        floor = self.unstored_floor(account.name, chat.peer_id)
        if floor is not None:
            read_upto = min(read_upto, floor - 1)
        reading = asyncio.ensure_future(
            account.mark_read(chat.peer_id, read_upto) if read_upto > 0 else asyncio.sleep(0)
        )
        reading.add_done_callback(_consume_read)  # retrieved even if nobody awaits it
        away = action == Action.AWAY.value
        # The history is read with the state change unless voice notes must be transcribed
        # first (their transcripts are part of it).
        with_history = not away and all(
            m.kind is MessageKind.TEXT or m.transcript for m in incoming
        )
        style_known = self._styles.get(reply.account_id)

        def start(tx: Any) -> tuple[Any, ...]:
            current = tx.update_reply(
                reply.id, expect_state=BEFORE_SENDING, state=ReplyState.GENERATING
            )
            event = self._events.stage_reply(tx, "reply.generating", current)
            if not with_history:
                return current, event, None, None
            return (current, event, *_started_tx(tx, reply.account_id, chat.id, style_known))

        if started is not None and reply.state is ReplyState.GENERATING:
            rows, style_read = started  # started by the transaction that created it
        else:
            reply, event, rows, style_read = await self._repo.transaction(start)
            self._events.publish(event)
        await self._transcribe(incoming, chat)
        summary: dict[str, Any] = {}
        if away:
            text, voice = behaviour.schedule.away_message, False
            usage: dict[str, Any] = {}
            flags: dict[str, Any] = {"away": True}
        else:
            if rows is None:
                rows = await self._repo.conversation(reply.account_id, chat.id, limit=HISTORY_TURNS)
            turns, last_ids = _turns(chat, rows)
            style = await self._style(reply.account_id, style_read)
            result = await self._think(reply, chat, behaviour, turns, last_ids, style)
            if result is None:
                return None
            text, flags, usage, summary = result
            voice = self._wants_voice(behaviour, incoming, text)
            greeting = behaviour.twin.greeting if reply.decision.get("greeting") else ""
            if greeting:
                text = f"{greeting}\n\n{text}"
        if run.cancelled.is_set():
            if summary:
                await self._repo.update_chat(chat.id, **summary)
            return None
        texts = [text] if voice else split_bubbles(text, behaviour.humanize.bubble_max_chars)
        generating = reply
        await reading  # read before the reply exists; a failure retries the generation

        def prepare(tx: Any) -> tuple[Any, ...] | None:
            if summary:
                tx.update_chat(chat.id, **summary)
            try:
                current = tx.update_reply(
                    generating.id,
                    expect_state=ReplyState.GENERATING,
                    state=ReplyState.SENDING,
                    text=text,
                    voice=voice,
                    flags=flags,
                    **usage,
                )
            except Conflict:
                return None  # cancelled meanwhile: keep the summary, store no bubbles
            # Every bubble with its random_id, committed *before* anything is sent.
            for stale in linked:
                if stale.direction is Direction.OUTGOING and stale.tg_message_id is None:
                    tx.update_message(
                        stale.id, state=ReplyState.CANCELLED, state_reason="regenerated"
                    )
            bubbles = [
                tx.add_outgoing(
                    generating.account_id,
                    generating.chat_id,
                    text=bubble,
                    kind=MessageKind.VOICE if voice else MessageKind.TEXT,
                    reply_id=generating.id,
                    bubble_index=index,
                    random_id=new_random_id(),
                    state=ReplyState.SENDING,
                )
                for index, bubble in enumerate(texts)
            ]
            event = self._events.stage_reply(
                tx, "reply.sending", current, bubbles=len(texts), voice=voice
            )
            return current, bubbles, event

        prepared = await self._repo.transaction(prepare)
        if prepared is None:
            raise Conflict(f"reply {reply.id} is no longer generating")
        reply, bubbles, event = prepared
        self._events.publish(event)
        return _Sending(reply, chat, policy, bubbles)

    async def _think(
        self,
        reply: Any,
        chat: Any,
        behaviour: Behaviour,
        turns: list[Turn],
        last_ids: list[int],
        style: Any,
    ) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        """The brain's answer: (text, flags, usage, chat fields to store: the new summary), or
        None when the chat was handed to the owner instead."""
        twin = behaviour.twin
        persona = Persona(
            owner_name=twin.owner_name or "the owner",
            facts=tuple(twin.facts),
            boundaries=tuple(twin.boundaries),
            disclose_assistant=twin.disclose_assistant,
            language=twin.language,
            instructions=twin.persona,
        )
        result = await self._brain.reply(
            history=turns,
            persona=persona,
            contact_name=chat.title or "the contact",
            style=style,
            summary=chat.summary,
            summary_covers=0,
            chat_id=chat.peer_id,
            now=self._clock.now(),
        )
        summary: dict[str, Any] = {}
        if result.summary_changed and result.summary_covers:
            summary = {
                "summary": result.summary,
                "summary_upto_message_id": last_ids[result.summary_covers - 1],
            }
        usage = {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            # an unknown model's cost is unknown, not free (twin.brain.pricing)
            "cost_usd": float(result.cost.usd) if result.cost.priced else None,
        }
        brain_reply = result.reply
        flags = {
            "requires_human": brain_reply.requires_human,
            "intent": brain_reply.intent,
            "confidence": brain_reply.confidence,
            "end_conversation": brain_reply.end_conversation,
        }
        if brain_reply.requires_human or not brain_reply.text.strip():
            if summary:
                await self._repo.update_chat(chat.id, **summary)
            await self._repo.update_reply(reply.id, flags=flags, **usage)
            await self._escalate(reply, chat, brain_reply)
            return None
        return brain_reply.text.strip(), flags, usage, summary

    async def _style(self, account_id: int, read: tuple[Any, Any] | None = None) -> Any:
        """The account's style profile, parsed once per stored version. `read` is (version,
        record or None) when the caller already looked it up in its transaction."""
        if read is None:
            version = await self._repo.style_profile_version(account_id)
            record = None
        else:
            version, record = read
        if version is None:
            self._styles.pop(account_id, None)
            return None
        known = self._styles.get(account_id)
        if known is not None and known[0] == version:
            return known[1]
        if record is None:
            record = await self._repo.get_style_profile(account_id)
            if record is None:
                return None
        accumulator = accumulator_of(record)
        if accumulator is None and record.data:
            log.warning("stored style profile of account %s is unreadable; ignoring", account_id)
        profile = accumulator.profile() if accumulator is not None else None
        self._styles[account_id] = (record.updated_at, profile)
        return profile

    async def _transcribe(self, incoming: Sequence[Any], chat: Any) -> None:
        """Voice notes become text the brain can read (stored with the message)."""
        for message in incoming:
            if message.kind is MessageKind.TEXT or message.transcript:
                continue
            if self._stt is None:
                raise _Unanswerable("no speech-to-text provider is configured")
            account = await self._accounts.get(await self._account_name(message.account_id))
            data = await account.download_media(chat.peer_id, message.tg_message_id)
            from twin.voice.errors import AudioError, TooLong

            try:
                transcript = await self._stt.transcribe(data, language=self._settings.stt.language)
            except (TooLong, AudioError) as exc:
                raise _Unanswerable(f"voice note cannot be transcribed: {exc}") from exc
            await self._repo.update_message(
                message.id, transcript=transcript.text, cost_usd=transcript.cost_usd
            )

    def _wants_voice(self, behaviour: Behaviour, incoming: Sequence[Any], text: str) -> bool:
        mode = behaviour.twin.voice_replies
        if self._tts is None or mode == "never" or len(text) > behaviour.twin.voice_max_chars:
            return False
        return mode == "always" or any(m.kind is MessageKind.VOICE for m in incoming)

    async def _send(self, reply: Any, run: _Run, sending: _Sending | None = None) -> None:
        """Send the stored bubbles in order, each with its stored random_id. Straight after
        generation the caller hands over what it has; a job resumed in `sending` reads it."""
        if sending is None:

            def read(tx: Any) -> tuple[Any, ...]:
                return (
                    tx.get_reply(reply.id),
                    tx.get_chat(reply.chat_id),
                    tx.get_settings(reply.account_id),
                    tx.reply_messages(reply.id),
                )

            current, chat, overrides, linked = await self._repo.transaction(read)
            self._events.remember_chat(chat.id, chat.peer_id)
            if current.state is not ReplyState.SENDING:
                return
            _, policy = self._behaviour(reply.account_id, overrides, chat.overrides)
            bubbles = [
                m
                for m in linked
                if m.direction is Direction.OUTGOING
                and m.state in (ReplyState.SENDING, ReplyState.SENT)
            ]
        else:
            chat, policy, bubbles = sending.chat, sending.policy, sending.bubbles
        humanize = policy.humanize
        account = await self._accounts.get(await self._account_name(reply.account_id))
        account.require_authorized()
        bubbles = sorted(bubbles, key=lambda m: m.bubble_index or 0)
        unsent = [i for i, bubble in enumerate(bubbles) if bubble.state is not ReplyState.SENT]
        still_sending = True  # as of the last transaction (the one that read or set `sending`)
        finished = False
        for position, bubble in enumerate(bubbles):
            if bubble.state is ReplyState.SENT:
                continue
            if position:
                pause = bubble_pause(humanize, self._rng)
                if not await self._clock.sleep(pause.seconds, run.cancelled):
                    return
            voice = bubble.kind is MessageKind.VOICE
            note = await self._synthesize(bubble.text) if voice else None
            if voice and note is None:
                voice = False  # TTS failed: the reply goes as text rather than being lost
            await self._act(account, chat.peer_id, bubble.text, voice, humanize, run)
            # A cancellation raises the flag before it is committed, so flag + the state seen
            # by the last transaction cover every cancellation committed before this send.
            if run.cancelled.is_set() or not still_sending:
                return
            if voice:
                result = await account.send_voice(
                    chat.peer_id,
                    note.ogg,
                    duration=note.duration_s,
                    waveform=note.waveform,
                    random_id=bubble.random_id,
                )
            else:
                result = await account.send_text(
                    chat.peer_id, bubble.text, random_id=bubble.random_id
                )
            last = position == unsent[-1]
            sent_at = self._clock.now()
            # Dated like Telegram dates messages, in whole seconds: the history is ordered by
            # (date, id), and a bubble dated to the microsecond would sort after a contact's
            # message of the same second that it actually preceded (found by bench/pipeline.py:
            # the model was then shown a conversation ending in the owner's words).
            sent_date = sent_at.replace(microsecond=0)

            def record(
                tx: Any,
                bubble: Any = bubble,
                result: Any = result,
                last: bool = last,
                sent_at: datetime = sent_at,
                sent_date: datetime = sent_date,
            ) -> tuple[list[StagedEvent], bool, bool]:
                if result.message_id is not None:
                    tx.mark_sent(bubble.id, result.message_id, date=sent_date)
                else:
                    tx.update_message(bubble.id, state=ReplyState.SENT)
                events = [
                    self._events.stage_reply(
                        tx,
                        "bubble.sent",
                        reply,
                        index=bubble.bubble_index,
                        message_id=result.message_id,
                        duplicate=result.duplicate,
                    )
                ]
                if not last:
                    return events, tx.get_reply(reply.id).state is ReplyState.SENDING, False
                # The reply is complete: close it in the same transaction.
                try:
                    done = self._finish_sent_tx(tx, reply, chat, len(bubbles), sent_at)
                except Conflict:
                    return events, False, False
                return [*events, done], True, True

            events, still_sending, finished = await self._repo.transaction(record)
            self._events.publish(*events)
            if last and not finished:
                raise Conflict(f"reply {reply.id} is no longer sending")
        if not finished:  # every bubble had gone out before (a resumed job)
            event = await self._repo.transaction(
                lambda tx: self._finish_sent_tx(tx, reply, chat, len(bubbles), self._clock.now())
            )
            self._events.publish(event)

    def _finish_sent_tx(
        self, tx: Any, reply: Any, chat: Any, bubbles: int, now: datetime
    ) -> StagedEvent:
        done = tx.update_reply(reply.id, expect_state=ReplyState.SENDING, state=ReplyState.SENT)
        tx.finish_reply_messages(reply.id, ReplyState.SENT, None)
        tx.update_chat(chat.id, last_outgoing_at=now)
        return self._events.stage_reply(tx, "reply.sent", done, bubbles=bubbles)

    async def _synthesize(self, text: str) -> Any:
        from twin.voice.errors import SpeechError

        try:
            return await self._tts.synthesize(text)
        except SpeechError as exc:
            log.warning("text-to-speech failed (%s); sending the reply as text", exc)
            return None

    async def _act(
        self, account: Any, peer_id: int, text: str, voice: bool, humanize: Any, run: _Run
    ) -> None:
        """Show "typing…"/"recording voice…" for a length-based time (cancellable)."""
        delay = typing_duration(humanize, self._rng, text, voice=voice).seconds
        action = "record_voice" if voice else "typing"
        remaining = delay
        while remaining > 0 and not run.cancelled.is_set():
            with contextlib.suppress(TwinError):
                await account.set_action(peer_id, action)
            step = min(TYPING_REFRESH, remaining)
            if not await self._clock.sleep(step, run.cancelled):
                return
            remaining -= step

    async def _escalate(self, reply: Any, chat: Any, brain_reply: Any) -> None:
        """Hand the chat to the owner: pause it and leave a note in their Saved Messages."""
        account_name = await self._account_name(reply.account_id)
        account = await self._accounts.get(account_name)
        linked = await self._repo.reply_messages(reply.id)
        last = next((m for m in reversed(linked) if m.direction is Direction.INCOMING), None)
        excerpt = ((last.transcript or last.text or "") if last else "")[:300]
        excerpt = excerpt.replace("http://", "").replace("https://", "")
        note = (
            f"twin needs you in the chat with {chat.title or chat.peer_id}"
            f"{' (@' + chat.username + ')' if chat.username else ''}.\n"
            f"Topic: {brain_reply.intent or 'unknown'}.\n"
            f"Last message: \u00ab{excerpt}\u00bb"
        )
        random_id = reply.flags.get("notify_random_id") or new_random_id()
        await self._repo.update_reply(
            reply.id, flags={**reply.flags, "notify_random_id": random_id}
        )
        await account.send_text("me", note, random_id=random_id)
        await self._repo.update_chat(chat.id, paused_until=PAUSED_FOREVER)
        await self._skip(reply, SkipReason.ESCALATED.value)
        await self._emit("reply.escalated", reply, intent=brain_reply.intent)

    async def _skip(self, reply: Any, reason: str) -> None:
        await self._finish(reply, ReplyState.SKIPPED, reason, "reply.skipped")

    async def _cancel(self, reply: Any, reason: str) -> None:
        await self._finish(reply, ReplyState.CANCELLED, reason, "reply.cancelled")

    async def _fail(
        self, reply: Any, reason: str, failure: Failure, error: str | None = None
    ) -> None:
        """Fail a job for good, recording why (`failure`): an outage failure is re-queued
        when the dependency works again (twin.services.recovery), a permanent one only by hand.
        `reason` is stored (cut to the column); the event also carries the full `error` (and
        its log line, twin.services.activity, says it)."""
        stored = clip(reason, REASON_CHARS)
        details: dict[str, Any] = {}
        if error or stored != reason:
            details["error"] = clip(error or reason, ERROR_CHARS)
        with contextlib.suppress(Conflict):
            await self._finish(
                reply, ReplyState.FAILED, stored, "reply.failed", failure=failure, **details
            )

    async def _finish(
        self,
        reply: Any,
        state: ReplyState,
        reason: str,
        event: str,
        failure: Failure | None = None,
        **details: Any,
    ) -> None:
        """Move an active job to a terminal state with its messages and event (one round
        trip); Conflict if it is no longer active."""
        _, staged = await self._repo.transaction(
            lambda tx: self._finish_tx(tx, reply.id, state, reason, event, failure, **details)
        )
        self._events.publish(staged)

    def _finish_tx(
        self,
        tx: Any,
        reply_id: int,
        state: ReplyState,
        reason: str,
        event: str,
        failure: Failure | None = None,
        **details: Any,
    ) -> tuple[Any, StagedEvent]:
        fields: dict[str, Any] = {}
        if failure is not None:
            fields["failure"] = details["failure"] = failure.value
        done = tx.update_reply(
            reply_id, expect_state=ACTIVE, state=state, reason=reason, **fields
        )
        tx.finish_reply_messages(reply_id, state, reason)
        return done, self._events.stage_reply(tx, event, done, reason=reason, **details)

    async def _unanswerable(self, reply: Any) -> None:
        """A message the twin cannot understand (a voice note that cannot be transcribed):
        `[stt] fallback` decides — escalate to the owner, or skip with the reason."""
        current = await self._repo.get_reply(reply.id)
        if current.state not in ACTIVE:
            return
        if self._settings.stt.fallback == "escalate":
            chat = await self._repo.get_chat(reply.chat_id)
            from twin.domain.structured import BrainReply

            await self._escalate(
                current,
                chat,
                BrainReply(
                    text="",
                    requires_human=True,
                    intent="voice note",
                    confidence=0.0,
                    end_conversation=False,
                ),
            )
        else:
            await self._skip(current, SkipReason.TOO_LONG_VOICE.value)

    async def _retry_later(self, reply: Any, exc: Exception) -> None:
        current = await self._repo.get_reply(reply.id)
        if current.state not in ACTIVE:
            return
        if current.attempts >= self._settings.twin.max_attempts:
            # An outage outlasted the retry budget: re-queued once the dependency answers
            # again (twin.services.recovery), while the message is recent enough.
            await self._fail(
                current,
                f"{type(exc).__name__}: gave up after {current.attempts} attempts",
                Failure.OUTAGE,
                error=failure_reason(exc, ERROR_CHARS),
            )
            return
        retry_after = getattr(exc, "retry_after", None)
        twin = self._settings.twin
        backoff = min(twin.retry_max_seconds, twin.retry_base_seconds * 2 ** (current.attempts - 1))
        delay = max(retry_after or 0.0, backoff * self._rng.uniform(0.5, 1.0))
        # Before sending, generation may simply run again; once sending, only resending is safe.
        state = ReplyState.SENDING if current.state is ReplyState.SENDING else ReplyState.SCHEDULED
        reply = await self._repo.update_reply(
            reply.id,
            expect_state=ACTIVE,
            state=state,
            next_attempt_at=self._clock.now() + timedelta(seconds=delay),
            lease_until=None,
        )
        await self._emit(
            "reply.retry",
            reply,
            error=type(exc).__name__,
            reason=failure_reason(exc, ERROR_CHARS),
            delay=round(delay, 3),
            attempt=current.attempts,
        )
        self.wake.set()


def _started_tx(
    tx: Any, account_id: int, chat_id: int, style_known: tuple[Any, Any] | None
) -> tuple[Any, tuple[Any, Any]]:
    """What generation reads with the move to `generating`: the conversation (newest first)
    and (style profile version, the profile record if it is not the `style_known` one)."""
    rows = tx.conversation(account_id, chat_id, limit=HISTORY_TURNS)
    version = tx.style_profile_version(account_id)
    record = None
    if version is not None and (style_known is None or style_known[0] != version):
        record = tx.get_style_profile(account_id)
    return rows, (version, record)


def _reply_times(
    tx: Any, account_id: int, now: datetime, chat_id: int | None, limit: int
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


def _turns(chat: Any, rows: Sequence[Any]) -> tuple[list[Turn], list[int]]:
    """The conversation the brain reads: `rows` (newest first) after the stored summary,
    oldest first, without bubbles that were never sent; and the message id of each turn."""
    turns: list[Turn] = []
    ids: list[int] = []
    for row in reversed(rows):
        if chat.summary_upto_message_id is not None and row.id <= chat.summary_upto_message_id:
            continue
        if row.direction is Direction.OUTGOING and row.state is not ReplyState.SENT:
            continue  # never sent: not part of the conversation
        text = row.transcript if row.kind is not MessageKind.TEXT and row.transcript else row.text
        if not text:
            continue
        role = "contact" if row.direction is Direction.INCOMING else "owner"
        kind = "voice" if row.kind is MessageKind.VOICE else "text"
        turns.append(Turn(role=role, text=text, at=row.date, kind=kind))
        ids.append(row.id)
    return turns, ids


def _consume_read(reading: asyncio.Future[None]) -> None:
    """Retrieve a read receipt's outcome, so a failure nobody awaited (the job ended first) is
    logged rather than reported by asyncio as never retrieved."""
    if not reading.cancelled() and reading.exception() is not None:
        log.info("read receipt failed: %s", reading.exception())


def failure_reason(exc: Exception, limit: int = ERROR_CHARS) -> str:
    """A failed reply's reason: the error's kind and its own message (`_fail` stores it cut
    to the column's size, and puts the whole of it in the event)."""
    return describe(exc, limit)


class _Unanswerable(TwinError):
    """The message cannot be understood (e.g. a voice note that cannot be transcribed): no
    retry can change that, so it never goes through the retry path."""


def _incoming_of(account: str, chat: Any, record: Any) -> IncomingMessage:
    """A stored incoming message as intake would have handed it over. Groups' messages are
    stored only when they address the owner, so they count as mentions."""
    kind = ChatKind(chat.kind)
    private = kind is ChatKind.PRIVATE
    return IncomingMessage(
        account=account,
        chat_id=chat.peer_id,
        chat_kind=kind,
        message_id=record.tg_message_id,
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


def _delay(at: datetime, now: datetime) -> float:
    """Seconds from `now` until `at` (0 when due)."""
    return round(max(0.0, (at - now).total_seconds()), 3)


def _decision_json(decision: Decision, message: IncomingMessage) -> dict[str, Any]:
    return {
        "action": decision.action.value,
        "explain": list(decision.explain),
        "greeting": decision.greeting,
        "delay_s": round(decision.delay.seconds, 3) if decision.delay else None,
        "first_message_at": message.date.isoformat(),
        "chat_kind": message.chat_kind.value if isinstance(message.chat_kind, ChatKind) else None,
    }
