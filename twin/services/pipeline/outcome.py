"""How a job ends or waits: skip, cancel, fail, retry later, escalate to the owner, and the
voice note that cannot be understood. Each is one transaction with its event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from typing import Any

from twin.config import Settings, TwinSettings
from twin.db.records import ChatRecord, ReplyRecord
from twin.domain.models import PAUSED_FOREVER, Direction, Failure, ReplyState, SkipReason
from twin.domain.policies.takeover import TakeoverWindow, takeover_window
from twin.domain.structured import BrainReply
from twin.errors import ERROR_CHARS, Conflict, clip, describe
from twin.ports import Accounts, Clock, Store, Tx
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.outbox import new_random_id
from twin.services.owner import owner_account
from twin.services.pipeline.generate import Escalation
from twin.services.pipeline.records import Draft
from twin.services.pipeline.states import ACTIVE, REASON_CHARS, finish_tx

log = logging.getLogger("twin.pipeline")


def failure_reason(exc: Exception, limit: int = ERROR_CHARS) -> str:
    """A failed reply's reason: the error's kind and its own message (`fail` stores it cut
    to the column's size, and puts the whole of it in the event)."""
    return describe(exc, limit)


class Outcomes:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Store,
        events: EventLog,
        accounts: Accounts,
        directory: AccountDirectory,
        clock: Clock,
        rng: random.Random,
        wake: asyncio.Event,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._events = events
        self._accounts = accounts
        self._directory = directory
        self._clock = clock
        self._rng = rng
        self._wake = wake

    async def skip(self, reply: ReplyRecord, reason: str) -> None:
        await self._finish(reply, ReplyState.SKIPPED, reason, "reply.skipped")

    async def drafted(
        self, reply: ReplyRecord, chat: ChatRecord, draft: Draft, twin: TwinSettings
    ) -> None:
        """Draft mode: the reply is written and kept for the owner (its text, flags and usage
        stored) as a pending draft (twin.services.drafts) that supersedes the chat's older one
        — expiring after `draft_expiry_minutes`, shown to the owner with `draft_notify`
        (its note's random id stored now) — and the job ends as skipped (`drafted`) without a
        send, in one transaction."""
        now = self._clock.now()
        minutes = twin.draft_expiry_minutes
        expires_at = now + timedelta(minutes=minutes) if minutes else None
        notice = new_random_id() if twin.draft_notify != "none" else None

        def work(tx: Tx) -> list[StagedEvent]:
            if draft.summary:
                tx.update_chat(chat.id, **draft.summary)
            tx.update_reply(
                reply.id,
                expect_state=ReplyState.GENERATING,
                text=draft.text,
                voice=draft.voice,
                flags=draft.flags,
                **draft.usage,
            )
            reason = SkipReason.DRAFTED.value
            skipped = finish_tx(
                tx, self._events, reply.id, ReplyState.SKIPPED, reason, "reply.skipped"
            )[1]
            written, superseded = tx.create_draft(
                reply.account_id,
                chat.id,
                reply.id,
                draft.text,
                at=now,
                expires_at=expires_at,
                notice_random_id=notice,
            )
            data = {
                "draft": written.id,
                "reply": reply.id,
                "chat": chat.peer_id,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "superseded": superseded,
            }
            created = self._events.stage(
                tx, "draft.created", data, account_id=reply.account_id, chat_id=chat.id
            )
            return [skipped, created]

        with contextlib.suppress(Conflict):
            self._events.publish(*await self._repo.transaction(work))

    async def cancel(self, reply: ReplyRecord, reason: str) -> None:
        await self._finish(reply, ReplyState.CANCELLED, reason, "reply.cancelled")

    async def owner_took_over(
        self, reply: ReplyRecord, chat: ChatRecord, minutes: float, max_minutes: float = 0.0
    ) -> None:
        """The owner wrote in the chat after the messages this job answers, and the takeover
        never reached it (a crash between storing the activity and handing it over): cancel it
        and set the takeover's pause, counted from the activity (capped from the takeover's
        first message), in one transaction."""
        active_at = chat.last_owner_activity_at
        if active_at is None:
            return
        current = None
        if chat.takeover_started_at is not None and chat.paused_until is not None:
            current = TakeoverWindow(chat.takeover_started_at, chat.paused_until)
        window = takeover_window(active_at, minutes, max_minutes, current=current)
        extend = (
            window is not None
            and window.until > self._clock.now()
            and not (chat.paused_until is not None and chat.paused_until >= window.until)
        )

        def work(tx: Tx) -> StagedEvent:
            if extend and window is not None:
                tx.update_chat(
                    chat.id, paused_until=window.until, takeover_started_at=window.started
                )
            reason = SkipReason.PAUSED.value
            return finish_tx(
                tx,
                self._events,
                reply.id,
                ReplyState.CANCELLED,
                reason,
                "reply.cancelled",
                owner_active_at=active_at.isoformat(),
            )[1]

        with contextlib.suppress(Conflict):
            self._events.publish(await self._repo.transaction(work))

    async def fail(
        self, reply: ReplyRecord, reason: str, failure: Failure, error: str | None = None
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
        reply: ReplyRecord,
        state: ReplyState,
        reason: str,
        event: str,
        failure: Failure | None = None,
        **details: Any,
    ) -> None:
        """Move an active job to a terminal state with its messages and event (one round
        trip); Conflict if it is no longer active."""
        _, staged = await self._repo.transaction(
            lambda tx: finish_tx(
                tx, self._events, reply.id, state, reason, event, failure, **details
            )
        )
        self._events.publish(staged)

    async def retry_later(self, reply: ReplyRecord, exc: Exception) -> None:
        """A transient failure: reschedule with exponential backoff (honouring Retry-After)
        until `max_attempts`, then fail it as an outage failure."""
        current = await self._repo.get_reply(reply.id)
        if current.state not in ACTIVE:
            return
        if current.attempts >= self._settings.twin.max_attempts:
            # An outage outlasted the retry budget: re-queued once the dependency answers
            # again (twin.services.recovery), while the message is recent enough.
            await self.fail(
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
        self._wake.set()

    async def unanswerable(self, reply: ReplyRecord) -> None:
        """A message the twin cannot understand (a voice note that cannot be transcribed):
        `[stt] fallback` decides — escalate to the owner, or skip with the reason."""
        current = await self._repo.get_reply(reply.id)
        if current.state not in ACTIVE:
            return
        if self._settings.stt.fallback == "escalate":
            chat = await self._repo.get_chat(reply.chat_id)
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
            await self.skip(current, SkipReason.TOO_LONG_VOICE.value)

    async def escalate(self, reply: ReplyRecord, chat: ChatRecord, escalation: Escalation) -> None:
        """The brain asked for the owner: store what it produced, then hand the chat over."""
        if escalation.summary:
            await self._repo.update_chat(chat.id, **escalation.summary)
        await self._repo.update_reply(reply.id, flags=escalation.flags, **escalation.usage)
        await self._escalate(reply, chat, escalation.reply)

    async def _escalate(
        self, reply: ReplyRecord, chat: ChatRecord, brain_reply: BrainReply
    ) -> None:
        """Hand the chat to the owner: pause it and leave a note in their Saved Messages."""
        account = await self._accounts.get(await self._directory.name_of(reply.account_id))
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
        if getattr(account, "is_bot", False):
            # A bot has no Saved Messages with the owner: the note goes to a personal account
            # answering as the same twin (if one is logged in).
            note = f"{note}\n(in the bot {account.name})"
            account = await self._owner_account(account.name)
        random_id = reply.flags.get("notify_random_id") or new_random_id()
        await self._repo.update_reply(
            reply.id, flags={**reply.flags, "notify_random_id": random_id}
        )
        if account is not None:
            await account.send_text("me", note, random_id=random_id)
        else:
            log.info("reply %s: escalated on a bot; no logged-in account to tell", reply.id)
        await self._repo.update_chat(
            chat.id, paused_until=PAUSED_FOREVER, takeover_started_at=None
        )
        await self.skip(reply, SkipReason.ESCALATED.value)
        await self._emit("reply.escalated", reply, intent=brain_reply.intent)

    async def _owner_account(self, bot: str) -> Any:
        """A logged-in personal account answering as the bot's twin, or None."""
        record = await self._repo.get_account(bot)
        twins = {twin.id: twin.name for twin in await self._repo.list_twins()}
        default = twins.get(record.twin_id or 0, "default") == "default"
        return await owner_account(self._repo, self._accounts, record.twin_id, default=default)

    async def _emit(self, type_: str, reply: ReplyRecord, **data: Any) -> None:
        await self._events.emit(
            type_, {"reply": reply.id, **data}, account_id=reply.account_id, chat_id=reply.chat_id
        )
