"""The owner's drafts (copilot mode, `[twin] mode = "draft"` or an account in draft mode): what
the owner decides, and what happens to a draft nobody decides.

A draft is written by the job that generated it (twin.services.pipeline.outcome, `drafted`);
from there:
- **send** (`POST /drafts/{id}/send`, optionally with the owner's own text): in one
  transaction the draft is decided and a new reply job is created, due now, for the same
  messages, carrying the approved text — the worker delivers it like any reply (exactly once,
  typing at the owner's pace), without asking the model again;
- **skip**: decided, nothing sent;
- **expiry** (`[twin] draft_expiry_minutes`): skipped, or sent as written with
  `draft_after_expiry = "send"`;
- a newer draft for the chat (the contact wrote again) supersedes it; the owner writing in the
  chat (or pausing it) cancels it (twin.services.chats, `ChatHold.hold`).

Every decision is a conditional update of a pending draft: two decisions never both win (the
loser gets 409)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from twin.background import cancel
from twin.clock import Clock
from twin.db.records import MessageRecord, ReplyRecord
from twin.db.records_drafts import DraftRecord
from twin.domain.decide import Action
from twin.domain.models import Direction, ReplyState
from twin.domain.safety import AccountMode
from twin.errors import InvalidInput, StorageUnavailable
from twin.ports import Store, Tx
from twin.services.directory import AccountDirectory
from twin.services.draft_notes import DraftNotes
from twin.services.events import EventLog, RemoteEvents, StagedEvent
from twin.services.pipeline.caches import Behaviours
from twin.services.pipeline.states import ModeOf, no_modes

log = logging.getLogger("twin.drafts")

CHECK_SECONDS = 60.0  # the longest the expiry task sleeps without looking
MAX_TEXT = 4096 * 4  # an edited draft at most (Telegram's message limit, split into bubbles)


def draft_json(draft: DraftRecord) -> dict[str, object]:
    """A draft as the API shows it."""
    return {
        "id": draft.id,
        "account": draft.account,
        "chat": draft.peer_id,
        "title": draft.title,
        "state": draft.state,
        "reason": draft.reason,
        "text": draft.text,
        "final_text": draft.final_text,
        "reply": draft.reply_id,
        "sent_reply": draft.sent_reply_id,
        "created_at": draft.created_at.isoformat(),
        "expires_at": draft.expires_at.isoformat() if draft.expires_at else None,
        "decided_at": draft.decided_at.isoformat() if draft.decided_at else None,
    }


class Drafts:
    def __init__(
        self,
        store: Store,
        directory: AccountDirectory,
        events: EventLog,
        clock: Clock,
        behaviours: Behaviours,
        *,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._events = events
        self._clock = clock
        self._behaviours = behaviours
        self._wake_worker = wake
        self._woken = asyncio.Event()  # a new draft: the expiry task looks again
        self._task: asyncio.Task[None] | None = None
        self.modes: ModeOf = no_modes  # the accounts' safety modes (twin.services.safety)
        # where the owner sees each draft and answers it (Saved Messages, a bot's buttons)
        self.notes = DraftNotes(store, directory, behaviours, self)
        events.subscribe(self._on_event)
        events.on_remote(self._on_remote)

    def _on_remote(self, told: RemoteEvents) -> None:
        """Another process made a draft: its note may go from a bot served here."""
        if told.any_of("draft.created"):
            self._woken.set()

    def _on_event(self, event: StagedEvent) -> None:
        if event.type == "draft.created":
            self._woken.set()
            self.notes.show(event.data["draft"])

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the notes being sent (twin.services.draft_notes)."""
        await self.notes.drain(timeout)

    # -- the owner's decisions -----------------------------------------------------------------
    async def list(
        self, account: str | None = None, state: str | None = "pending", limit: int = 100
    ) -> list[DraftRecord]:
        account_id = await self._directory.id_of(account) if account else None
        return await self._store.drafts(account_id=account_id, state=state, limit=limit)

    async def get(self, draft_id: int) -> DraftRecord:
        return await self._store.get_draft(draft_id)

    async def send(
        self, draft_id: int, text: str | None = None, *, reason: str | None = None
    ) -> tuple[DraftRecord, ReplyRecord]:
        """Send the draft (or the owner's `text` instead): decided and handed to the worker in
        one transaction. NotFound for an unknown draft, Conflict for one decided already."""
        if text is not None:
            text = text.strip()
            if not text:
                raise InvalidInput("text", "empty (leave it out to send the draft as written)")
            if len(text) > MAX_TEXT:
                raise InvalidInput("text", f"at most {MAX_TEXT} characters")
        now = self._clock.now()

        def work(tx: Tx) -> tuple[DraftRecord, ReplyRecord, list[StagedEvent]]:
            draft = tx.get_draft(draft_id)
            final = text if text is not None else draft.text
            why = reason or ("edited" if final != draft.text else "as written")
            incoming = [
                m
                for m in tx.reply_messages(draft.reply_id)
                if m.direction is Direction.INCOMING and m.state is not ReplyState.CANCELLED
            ]
            answered = [m.id for m in incoming]
            reply = tx.create_reply(
                draft.account_id,
                draft.chat_id,
                reply_at=now,
                decision={
                    "action": Action.REPLY.value,
                    "explain": [f"the owner's draft {draft.id}, sent {why}"],
                    "draft_id": draft.id,
                    "approved_text": final,
                    "first_message_at": now.isoformat(),
                },
            )
            tx.attach_messages(reply.id, answered, message_state=ReplyState.SCHEDULED)
            decided = tx.decide_draft(
                draft.id, "sent", at=now, reason=why, final_text=final, sent_reply_id=reply.id
            )
            if reason is None:  # the owner's decision (not an expiry): what they made of it
                kind = "edited" if final != draft.text else "approved"
                _correction(tx, draft, kind, _context(incoming), final)
            staged = [
                self._draft_event(tx, decided, "draft.sent"),
                self._events.stage_reply(
                    tx, "reply.scheduled", reply, action=Action.REPLY.value, delay_s=0.0
                ),
            ]
            return decided, reply, staged

        decided, reply, staged = await self._store.transaction(work)
        self._events.publish(*staged)
        if self._wake_worker is not None:
            self._wake_worker.set()
        return decided, reply

    async def skip(
        self, draft_id: int, *, reason: str = "owner", state: str = "skipped"
    ) -> DraftRecord:
        now = self._clock.now()

        def work(tx: Tx) -> tuple[DraftRecord, StagedEvent]:
            decided = tx.decide_draft(draft_id, state, at=now, reason=reason)
            if state == "skipped":  # the owner's decision: the twin should not have said it
                asked = [
                    m
                    for m in tx.reply_messages(decided.reply_id)
                    if m.direction is Direction.INCOMING
                ]
                _correction(tx, decided, "skipped", _context(asked), None)
            return decided, self._draft_event(tx, decided, f"draft.{state}")

        decided, event = await self._store.transaction(work)
        self._events.publish(event)
        return decided

    def _draft_event(self, tx: Tx, draft: DraftRecord, type: str) -> StagedEvent:
        data = {
            "draft": draft.id,
            "reply": draft.reply_id,
            "chat": draft.peer_id,
            "state": draft.state,
            "reason": draft.reason,
            "edited": draft.final_text is not None and draft.final_text != draft.text,
        }
        return self._events.stage(
            tx, type, data, account_id=draft.account_id, chat_id=draft.chat_id
        )

    # -- expiry --------------------------------------------------------------------------------
    async def expire_due(self) -> int:
        """Decide the drafts whose time is up: skipped (`expired`), or sent as written where
        `draft_after_expiry = "send"`. How many were decided."""
        decided = 0
        for draft in await self._store.due_drafts(self._clock.now()):
            chat = await self._store.get_chat(draft.chat_id)
            behaviour = await self._behaviours.of_chat(self._store, chat)
            try:
                # Never sent by itself from an account the owner or the governor put in draft
                # or off: only the owner's own decision sends then.
                mode = self.modes(draft.account_id)
                held = mode is not None and mode.mode is not AccountMode.ACTIVE
                if behaviour.twin.draft_after_expiry == "send" and not held:
                    await self.send(draft.id, reason="on expiry")
                else:
                    await self.skip(draft.id, reason="expired", state="expired")
            except Exception as exc:  # decided meanwhile (409), or its chat is gone
                if isinstance(exc, StorageUnavailable):
                    raise
                log.debug("draft %s: not expired (%s)", draft.id, exc)
                continue
            decided += 1
        return decided

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="draft-expiry")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _loop(self) -> None:
        while True:
            self._woken.clear()
            started = self._clock.now()
            wait = CHECK_SECONDS
            pause = None
            try:
                await self.expire_due()
                soonest = await self._store.next_draft_expiry()
                if soonest is not None:
                    due_in = (soonest - started).total_seconds()
                    if due_in <= 0:  # due already and not decided: it keeps failing
                        pause = 1.0  # a full second from now: never a spinning loop
                    wait = min(wait, due_in)
            except StorageUnavailable:
                log.warning("drafts: the database is unavailable; expiry checked later")
            except Exception:  # never let one bad pass end the task
                log.exception("drafts: the expiry pass failed")
            with contextlib.suppress(Exception):  # (logged by the notes; the next pass again)
                await self.notes.resend()  # notes kept back, or for the bots served here
            if pause is None:
                # Counted from the pass's start: a draft falling due while the pass ran (the
                # time it took, or a clock that jumped) is looked at again at once.
                pause = wait - (self._clock.now() - started).total_seconds()
            await self._clock.sleep(pause, self._woken)


def _context(messages: list[MessageRecord]) -> str:
    """What the contact wrote, as a correction remembers it."""
    return "\n".join(m.transcript or m.text or "" for m in messages).strip()


def _correction(
    tx: Tx, draft: DraftRecord, kind: str, context: str, owner_text: str | None
) -> None:
    if context:
        tx.record_correction(
            draft.account_id,
            draft.chat_id,
            kind,
            context=context,
            twin_text=draft.text,
            owner_text=owner_text,
            draft_id=draft.id,
        )
