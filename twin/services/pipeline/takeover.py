"""The owner and the contact change what a pending reply answers: the owner writing in the chat
from another device (takeover: the chat's one pause, twin.services.chats), the owner reading it
from another device (a reply waiting out its grace period is cancelled), the owner's online
status (recorded: "only if offline" reads it), an edited message (the brain reads the new text)
and deleted messages (a reply left with nothing is cancelled)."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from twin.db.records import ChatRecord, ReplyRecord
from twin.domain.models import (
    ChatKind,
    Direction,
    MessageKind,
    OwnerActivity,
    OwnerPresence,
    OwnerRead,
    ReplyState,
    SkipReason,
)
from twin.domain.policies.takeover import (
    TakeoverWindow,
    read_cancels,
    resumed_reply_at,
    takeover_window,
)
from twin.errors import Conflict, NotFound
from twin.ports import Clock, Store, Tx
from twin.services.chats import KEEP, ChatHold
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.pipeline.caches import Behaviours
from twin.services.pipeline.corrections import OwnerCorrections
from twin.services.pipeline.runs import Runs
from twin.services.pipeline.states import BEFORE_SENDING, finish_tx

log = logging.getLogger("twin.pipeline")

NOT_STARTED = (ReplyState.RECEIVED, ReplyState.SCHEDULED)
MAX_PHONE_DELETIONS = 3  # more at once is no correction of one reply (a cleared chat)


def current_takeover(chat: ChatRecord) -> TakeoverWindow | None:
    """The chat's takeover as stored (running or not), if its pause is one."""
    if chat.takeover_started_at is None or chat.paused_until is None:
        return None
    return TakeoverWindow(chat.takeover_started_at, chat.paused_until)


class Takeover:
    def __init__(
        self,
        *,
        repo: Store,
        events: EventLog,
        clock: Clock,
        directory: AccountDirectory,
        behaviours: Behaviours,
        holds: ChatHold,
        runs: Runs | None = None,
    ) -> None:
        self._repo = repo
        self._events = events
        self._clock = clock
        self._directory = directory
        self._behaviours = behaviours
        self._holds = holds
        self._runs = runs
        self._corrections = OwnerCorrections(repo, events)

    def pause_tx(self, tx: Tx, activity: OwnerActivity, chat: ChatRecord) -> ChatRecord:
        """Inside the transaction that stores the owner's message: set the takeover's pause,
        so the chat is never unpaused between the two — a crash before the hand-over below
        still leaves the contact's next messages deferred (the pending reply is cancelled then
        by the executor's admission, `owner_took_over`). The chat as it is now."""
        twin = self._behaviours.get(
            chat.account_id, tx.behaviour_overrides(chat.account_id), chat.overrides
        )[0].twin
        window = self._window(activity, chat, twin.takeover_minutes, twin.takeover_max_minutes)
        if window is None:
            return chat
        return tx.update_chat(
            chat.id, paused_until=window.until, takeover_started_at=window.started
        )

    def _window(
        self, activity: OwnerActivity, chat: ChatRecord, minutes: float, max_minutes: float
    ) -> TakeoverWindow | None:
        """The pause this owner message sets; None when it leaves the pause as it is: no
        takeover (`takeover_minutes = 0`), one over already (a late message), or a longer pause
        of the owner's own (API pause, escalation)."""
        now = self._clock.now()
        current = current_takeover(chat)
        window = takeover_window(activity.date, minutes, max_minutes, current=current)
        if window is None or window.until <= now:
            return None
        own_pause = chat.takeover_started_at is None and chat.is_paused(now)
        if own_pause and chat.paused_until is not None and chat.paused_until >= window.until:
            return None
        return window

    def resume_tx(self, tx: Tx, chat: ChatRecord) -> list[StagedEvent]:
        """Inside the transaction that resumes the chat early (the API, `.twin resume`): the
        contact's messages deferred to the end of the takeover are answered as if it ended
        now (`resumed_reply_at`: the read delay from now, or from the next opening)."""
        pending = tx.pending_reply(chat.id)
        if pending is None or not pending.decision.get("takeover_resume"):
            return []
        policy = self._behaviours.get(
            chat.account_id, tx.behaviour_overrides(chat.account_id), chat.overrides
        )[1]
        now = self._clock.now()
        at = resumed_reply_at(pending.reply_at, pending.decision.get("delay_s"), now, policy.hours)
        if at is None:
            return []
        explain = [
            *pending.decision.get("explain", []),
            f"the chat was resumed at {now.isoformat()}: reply at {at.isoformat()}",
        ]
        try:
            reply = tx.update_reply(
                pending.id,
                expect_state=NOT_STARTED,
                reply_at=at,
                decision={**pending.decision, "explain": explain},
            )
        except Conflict:  # started meanwhile
            return []
        delay_s = round(max(0.0, (at - now).total_seconds()), 3)
        event = self._events.stage_reply(
            tx, "reply.rescheduled", reply, reply_at=at.isoformat(), delay_s=delay_s, resumed=True
        )
        return [event]

    async def on_owner_activity(self, activity: OwnerActivity, chat: ChatRecord) -> None:
        """The owner wrote in this chat: step back (pause) and cancel what was pending — with
        `takeover_minutes = 0` no pause, but what was pending is still the owner's.

        The pause counts from the owner's message (each one restarts it) and is capped from the
        takeover's first message (`takeover_max_minutes`); a longer pause of the owner's own
        (API pause, escalation) is left as it is. The contact's messages arriving meanwhile are
        deferred to the pause's end (`takeover_resume = "answer"`): a reply job due then, which
        the owner's next message cancels like any pending reply. Intake has set the pause
        already (`pause_tx`, with the message); setting it again here changes nothing."""
        twin = (await self._behaviours.of_chat(self._repo, chat)).twin
        window = self._window(activity, chat, twin.takeover_minutes, twin.takeover_max_minutes)
        if window is None:
            await self._holds.hold(chat, KEEP)  # cancel only
        else:
            await self._pause(activity, chat, window, twin.takeover_minutes)
        # Last, once the hand-over (what intake retries) is done: never recorded twice, and
        # never in the way of cancelling what was pending.
        if twin.followup_minutes and activity.text.strip():
            await self._corrections.followed_up(activity, chat, twin.followup_minutes)

    async def _pause(
        self, activity: OwnerActivity, chat: ChatRecord, window: TakeoverWindow, minutes: float
    ) -> None:
        data = {
            "account": activity.account,
            "chat": chat.peer_id,
            "until": window.until.isoformat(),
            "minutes": minutes,
            "takeover_since": window.started.isoformat(),
        }

        def paused(tx: Tx, cancelled: int) -> StagedEvent:
            return self._events.stage(
                tx,
                "chat.paused",
                {**data, "cancelled": cancelled},
                account_id=chat.account_id,
                chat_id=chat.id,
            )

        await self._holds.hold(chat, window.until, takeover_since=window.started, event=paused)

    async def on_owner_read(self, read: OwnerRead) -> None:
        """The owner read the chat from another device: recorded as their activity, and a reply
        still waiting out its grace period whose messages the read covers is cancelled
        (`owner_read`), in one transaction. A read is not a message: it starts no takeover,
        and a reply without a grace period, or one already started, goes on."""
        account_id = await self._directory.id_of(read.account)
        try:
            chat: ChatRecord | None = await self._repo.get_chat_by_peer(account_id, read.chat_id)
        except NotFound:
            chat = None
        if chat is None or self._runs is None:
            await self._read(account_id, chat, read)
            return
        # The planner's lock: no message joins a pending reply while the read is judged.
        async with self._runs.lock(account_id, chat.peer_id):
            await self._read(account_id, chat, read)

    async def _read(self, account_id: int, chat: ChatRecord | None, read: OwnerRead) -> None:
        pending: list[ReplyRecord] = []
        if chat is not None:
            self._events.remember_chat(chat.id, chat.peer_id)
            pending = [
                reply
                for reply in await self._repo.unfinished_replies(account_id)
                if reply.chat_id == chat.id
                and reply.state in NOT_STARTED
                and reply.attempts == 0  # never started: the daemon has not read it itself
                and reply.decision.get("grace_until")
                # read within the grace period (not hours later, while a deferral waits)
                and read.date <= datetime.fromisoformat(reply.decision["grace_until"])
            ]

        def work(tx: Tx) -> list[StagedEvent]:
            tx.note_owner_activity(account_id, read.date)
            staged = [event for reply in pending if (event := self._read_tx(tx, reply, read))]
            if chat is None:
                return staged
            data = {"chat": read.chat_id, "max_id": read.max_id, "cancelled": len(staged)}
            read_event = self._events.stage(
                tx, "owner.read", data, account_id=account_id, chat_id=chat.id
            )
            return [read_event, *staged]

        self._events.publish(*await self._repo.transaction(work))

    def _read_tx(self, tx: Tx, reply: ReplyRecord, read: OwnerRead) -> StagedEvent | None:
        """Cancel `reply` if the read covers what it answers and it has not started."""
        incoming = [
            m.tg_message_id
            for m in tx.reply_messages(reply.id)
            if m.direction is Direction.INCOMING and m.state is not ReplyState.CANCELLED
        ]
        newest = max((i for i in incoming if i is not None), default=None)
        if not read_cancels(read.max_id, newest, has_grace=True):
            return None
        reason = SkipReason.OWNER_READ.value
        try:
            _, event = finish_tx(
                tx,
                self._events,
                reply.id,
                ReplyState.CANCELLED,
                reason,
                "reply.cancelled",
                expect=NOT_STARTED,
                read_max_id=read.max_id,
            )
        except Conflict:  # started (its grace is over) or finished meanwhile
            return None
        return event

    async def on_owner_presence(self, presence: OwnerPresence) -> None:
        """The owner's own online status (their devices set it; the daemon never does)."""
        account_id = await self._directory.id_of(presence.account)
        until: datetime | None = presence.until if presence.online else None
        data = {
            "online": presence.online,
            "at": presence.at.isoformat(),
            "until": until.isoformat() if until else None,
        }

        def work(tx: Tx) -> StagedEvent:
            tx.set_owner_status(account_id, presence.at, until)
            return self._events.stage(tx, "owner.presence", data, account_id=account_id)

        self._events.publish(await self._repo.transaction(work))

    async def on_edited(self, account: str, peer_id: int, tg_message_id: int, text: str) -> None:
        """An edit before the reply is generated is simply what the brain will read."""
        account_id = await self._directory.id_of(account)
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
        account_id = await self._directory.id_of(account)
        chat_id = None
        if peer_id is not None:  # channels/supergroups say where; private chats do not
            try:
                chat_id = (await self._repo.get_chat_by_peer(account_id, peer_id)).id
            except NotFound:
                return
        affected: set[int] = set()
        peers: dict[int, int] = {}  # chat id -> peer id (private chats' deletions do not say)
        theirs = await self._repo.incoming_by_tg_ids(account_id, tg_ids, chat_id=chat_id)
        for message in theirs:
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
            await self._cancel_if_empty(reply_id)
        # The twin's sent replies deleted — by the owner on their phone, as far as anyone can
        # tell: a private chat's deletion does not say who. Not counted when the contact's
        # messages went too (a cleared history) or many at once, nor in a channel or
        # supergroup when the update did not say which (their ids are their own).
        if theirs or len(tg_ids) > MAX_PHONE_DELETIONS:
            return
        sent = await self._repo.incoming_by_tg_ids(
            account_id, tg_ids, chat_id=chat_id, direction=Direction.OUTGOING.value
        )
        for message in sent:
            kind = (await self._repo.get_chat(message.chat_id)).kind
            if chat_id is not None or kind in (ChatKind.PRIVATE.value, ChatKind.GROUP.value):
                await self._corrections.record(message, "phone_deleted", None)

    async def on_owner_edited(
        self, account: str, peer_id: int, tg_message_id: int, text: str
    ) -> None:
        """The owner edited a message from their phone: if it is one of the twin's sent
        bubbles, what they made of it is a correction (the prompt's first examples later)."""
        account_id = await self._directory.id_of(account)
        try:
            chat = await self._repo.get_chat_by_peer(account_id, peer_id)
            message = await self._repo.get_message_by_tg(account_id, chat.id, tg_message_id)
        except NotFound:
            return
        # A text bubble whose text changed (a reaction is an edit too, with the same text; a
        # voice bubble's stored text is what it says, not its caption)
        changed = text.strip() and text.strip() != (message.text or "")
        if message.direction is Direction.OUTGOING and message.kind is MessageKind.TEXT and changed:
            await self._corrections.record(message, "phone_edited", text.strip())

    async def _cancel_if_empty(self, reply_id: int) -> None:
        remaining = [
            m
            for m in await self._repo.reply_messages(reply_id)
            if m.direction is Direction.INCOMING and m.state is not ReplyState.CANCELLED
        ]
        if remaining:
            return
        with contextlib.suppress(Conflict):
            reply = await self._repo.update_reply(
                reply_id,
                expect_state=BEFORE_SENDING,
                state=ReplyState.CANCELLED,
                reason=SkipReason.DELETED.value,
            )
            await self._events.emit(
                "reply.cancelled",
                {"reply": reply.id, "reason": SkipReason.DELETED.value},
                account_id=reply.account_id,
                chat_id=reply.chat_id,
            )
