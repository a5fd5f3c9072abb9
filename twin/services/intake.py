"""Intake: received messages and owner activity → stored once → handed to the reply pipeline.

Idempotent by construction: the repository records a message once per (account, chat, Telegram
id), and only a *newly* recorded message goes on to the pipeline — so a catch-up that re-delivers
a message, a sweep that finds it again, or two racing paths never produce a second reply.

Storing is one transaction per message (chat, message and its event together): intake is on the
path of every message, so it costs one round trip to the database, not one per statement. With
a pipeline attached (`on_new_message`), the pipeline's plan runs `store_incoming_tx` in its own
transaction and adds its decision to it: a message is never stored without what is to be done
about it, so no crash can leave a message recorded (and so never delivered again) but
unanswered.

Nothing handed over is lost when the database is unreachable: Telegram will not deliver an
update twice, so a message that cannot be stored is *held* in memory (in arrival order, up to
`max_held`) and stored by a background task that retries with backoff until the database is
back. The owner's read receipts and online status from other devices are held the same way,
the newest per chat (reads) and per account (status). While anything is held, later arrivals
queue behind it, so each chat's messages are still stored (and decided) in order. The pipeline
never marks a chat read past a held message (`unstored_floor`); what does not fit in memory is
found again by the reconciliation sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from twin.background import woken
from twin.clock import Clock
from twin.db.records import ChatRecord, MessageRecord
from twin.domain.backoff import Backoff
from twin.domain.models import (
    ChatKind,
    Direction,
    IncomingMessage,
    OwnerActivity,
    OwnerPresence,
    OwnerRead,
)
from twin.errors import NotFound, StorageUnavailable
from twin.logs import mask_chat
from twin.ports import Tx
from twin.services.directory import AccountDirectory, is_bot_account
from twin.services.events import EventLog, StagedEvent

log = logging.getLogger("twin.intake")

# (chat, chat_created, record, event) for a newly stored message, None for one already stored
Stored = tuple[ChatRecord, bool, MessageRecord, StagedEvent] | None
# (message, account id) -> whether it was new; the hook stores it (`store_incoming_tx`)
NewMessageHook = Callable[[IncomingMessage, int], Awaitable[bool]]
OwnerActivityHook = Callable[[OwnerActivity, ChatRecord], Awaitable[None]]
OwnerPauseHook = Callable[[Tx, OwnerActivity, ChatRecord], ChatRecord]
OwnerReadHook = Callable[[OwnerRead], Awaitable[None]]
OwnerPresenceHook = Callable[[OwnerPresence], Awaitable[None]]

T = TypeVar("T")
Update = IncomingMessage | OwnerActivity
UpdateKey = tuple[str, int, int]  # account, chat (peer) id, Telegram message id

MAX_HELD = 10_000  # updates held in memory while the database is unreachable
# Between two tries to store a held update (a new arrival makes it try at once).
RETRY = Backoff(base=0.5, cap=15.0)


class IntakeStore(Protocol):
    async def unrecorded_ids(
        self, account_id: int, chat_id: int, candidate_ids: list[int]
    ) -> Iterable[int]: ...
    async def get_chat_by_peer(self, account_id: int, peer_id: int) -> ChatRecord: ...
    async def transaction(self, work: Callable[[Tx], T]) -> T: ...


class _Takeover:
    """Owner activity that is stored, but whose hand-over to the pipeline (pause the chat,
    cancel its pending reply) failed for the database: only that part is retried."""

    def __init__(self, activity: OwnerActivity, chat: ChatRecord) -> None:
        self.activity = activity
        self.chat = chat
        self.account = activity.account
        self.chat_id = activity.chat_id
        self.message_id = activity.message_id


class _Signal:
    """The owner's read receipt or online status, held for the database: no message of its own,
    so its key is the chat's read (or the account's status), and a newer one replaces it."""

    READ, PRESENCE = -1, -2  # in place of a message id in the key

    def __init__(self, signal: OwnerRead | OwnerPresence) -> None:
        self.signal = signal
        self.account = signal.account
        if isinstance(signal, OwnerRead):
            self.chat_id, self.message_id = signal.chat_id, self.READ
        else:
            self.chat_id, self.message_id = 0, self.PRESENCE

    def newer_than(self, other: Held) -> bool:
        mine, theirs = self.signal, getattr(other, "signal", None)
        if isinstance(mine, OwnerRead) and isinstance(theirs, OwnerRead):
            return mine.max_id >= theirs.max_id
        return True  # presence: the latest report wins


Held = Update | _Takeover | _Signal


class _HandOverPending(StorageUnavailable):
    """Owner activity was stored but not handed over: hold `takeover` instead of it."""

    def __init__(self, takeover: _Takeover, cause: StorageUnavailable) -> None:
        super().__init__(str(cause))
        self.takeover = takeover


def _key(update: Held) -> UpdateKey:
    return update.account, update.chat_id, update.message_id


def _what(update: Held) -> str:
    """An update for the log (chat ids masked)."""
    if isinstance(update, _Signal):
        if isinstance(update.signal, OwnerRead):
            return f"the owner's read receipt of chat {mask_chat(update.chat_id)}"
        return "the owner's online status"
    return f"message {update.message_id} of chat {mask_chat(update.chat_id)}"


class Intake:
    def __init__(
        self,
        store: IntakeStore,
        events: EventLog,
        directory: AccountDirectory,
        *,
        clock: Clock | None = None,
        max_held: int = MAX_HELD,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._directory = directory
        self._clock = clock
        self._max_held = max_held
        self._rng = rng or random.Random()
        self._held: OrderedDict[UpdateKey, Held] = OrderedDict()
        # Incoming messages not stored (held, or dropped when memory was full) per chat:
        # message id -> date. Read receipts stop below the smallest.
        self._unstored: dict[tuple[str, int], dict[int, datetime]] = {}
        self._retry: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self.dropped = 0  # updates that did not fit in memory (the sweep finds them again)
        self.changed = asyncio.Event()  # set when `held` or `dropped` changes (tests wait on it)
        self.on_new_message: NewMessageHook | None = None
        self.on_owner_activity: OwnerActivityHook | None = None
        self.on_owner_read: OwnerReadHook | None = None
        self.on_owner_presence: OwnerPresenceHook | None = None
        # Inside the activity's own transaction: the takeover's pause (set with the message).
        self.owner_pause: OwnerPauseHook | None = None
        # A reply in a bot's chat: the owner's text for a draft? (twin.services.draft_notes)
        self.bot_reply: Callable[[IncomingMessage], Awaitable[bool]] | None = None

    # --- what callers read ---------------------------------------------------------------------
    @property
    def held(self) -> int:
        """Updates waiting in memory for the database (exported in /metrics)."""
        return len(self._held)

    def unstored_floor(
        self, account: str, peer_id: int, max_age: float | None = None
    ) -> int | None:
        """The smallest id of this chat's incoming messages that are not stored yet (None when
        there is none): a read receipt must stay below it. Dropped messages older than
        `max_age` seconds no longer count (the sweep will not take them in either)."""
        pending = self._unstored.get((account, peer_id))
        if not pending:
            return None
        if max_age is not None and self._clock is not None:
            cutoff = self._clock.now() - timedelta(seconds=max_age)
            for message_id in [i for i, date in pending.items() if date < cutoff]:
                if (account, peer_id, message_id) not in self._held:
                    del pending[message_id]
            if not pending:
                del self._unstored[(account, peer_id)]
                return None
        return min(pending)

    async def account_id(self, name: str) -> int:
        return await self._directory.id_of(name)

    # --- intake ----------------------------------------------------------------------------------
    async def incoming(self, message: IncomingMessage) -> bool:
        """Store a received message; True if it was new (and so handed to the pipeline).
        False too when it is held for the database (it will be handed over once stored)."""
        return await self._take(message)

    async def owner_activity(self, activity: OwnerActivity) -> None:
        await self._take(activity)

    async def owner_read(self, read: OwnerRead) -> None:
        """The owner read a chat on another device (held like a message while the database is
        unreachable, so the grace period's rule still applies once it is back)."""
        await self._take(_Signal(read))

    async def owner_presence(self, presence: OwnerPresence) -> None:
        await self._take(_Signal(presence))

    async def _take(self, update: Update | _Signal) -> bool:
        if self._held:  # behind the updates already waiting: keep each chat in order
            self._hold(update)
            return False
        try:
            return await self._store_update(update)
        except StorageUnavailable as exc:
            log.warning(
                "account %s: cannot store %s (%s); holding it until the database is back",
                update.account,
                _what(update),
                exc,
            )
            self._hold(getattr(exc, "takeover", update))
            return False

    def _hold(self, update: Held) -> None:
        key = _key(update)
        if key in self._held:
            # In its place: a stored activity becomes its hand-over; a redelivery (catch-up,
            # the sweep) never turns a pending hand-over back into a plain activity, whose
            # retry would find it stored and stop there.
            held = self._held[key]
            if isinstance(update, _Signal):
                if update.newer_than(held):  # it moves to the end: after what arrived before
                    del self._held[key]
                    self._held[key] = update
            elif not isinstance(held, _Takeover):
                self._held[key] = update
        else:
            if len(self._held) >= self._max_held:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error(
                        "%d update(s) dropped: more than %d are waiting for the database; the "
                        "reconciliation sweep will look for them once it is back",
                        self.dropped,
                        self._max_held,
                    )
            else:
                self._held[key] = update
        if isinstance(update, IncomingMessage):
            chat = self._unstored.setdefault((update.account, update.chat_id), {})
            chat[update.message_id] = update.date
        self.changed.set()
        self._arrived.set()
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._store_held(), name="intake retry")

    def _stored(self, update: Held) -> None:
        key = _key(update)
        if isinstance(update, _Signal) and self._held.get(key) is not update:
            return  # a newer read or status took its place meanwhile: that one is still due
        if self._held.pop(key, None) is not None:
            self.changed.set()
        chat = self._unstored.get((update.account, update.chat_id))
        if chat is not None:
            chat.pop(update.message_id, None)
            if not chat:
                del self._unstored[(update.account, update.chat_id)]

    async def _store_held(self) -> None:
        """Store the held updates in arrival order, retrying with backoff while the database
        is unreachable; a new arrival makes it try again at once."""
        failures = 0
        delay: float | None = None
        while self._held:
            update = next(iter(self._held.values()))
            self._arrived.clear()  # before the try: an arrival during it is not forgotten
            try:
                await self._store_update(update)
            except StorageUnavailable as exc:
                key = _key(update)
                if not isinstance(update, _Signal) or self._held.get(key) is update:
                    self._held[key] = getattr(exc, "takeover", update)
                failures += 1
                delay = RETRY.next_delay(delay, self._rng)
                await woken(self._arrived, delay)
                continue
            except Exception:
                # Not an outage: retrying cannot help. Logged with its identity; the sweep may
                # still find the message.
                log.exception(
                    "account %s: failed to store %s; dropped", update.account, _what(update)
                )
            if failures:
                log.info("the database is back: storing %d held update(s)", len(self._held))
                failures, delay = 0, None
            self._stored(update)

    async def aclose(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        if self._held:
            log.error(
                "%d update(s) were still waiting for the database at shutdown; the next start "
                "finds them through catch-up and the reconciliation sweep",
                len(self._held),
            )

    async def _store_update(self, update: Held) -> bool:
        if isinstance(update, IncomingMessage):
            new = await self._store_incoming(update)
        elif isinstance(update, _Takeover):
            await self._hand_over_activity(update)
            new = True
        elif isinstance(update, _Signal):
            await self._hand_over_signal(update)
            new = True
        else:
            await self._store_owner_activity(update)
            new = True
        self._stored(update)
        return new

    async def _store_incoming(self, message: IncomingMessage) -> bool:
        # A reply in a bot's chat may be the owner's text for a draft (`bot_reply`): then it is
        # that, never a message to answer — asked here, so a message held while the database
        # is out is asked again when it is back.
        hook = self.bot_reply
        bot_reply = message.reply_to is not None and is_bot_account(message.account)
        if bot_reply and hook is not None and await hook(message):
            return False
        account_id = await self.account_id(message.account)
        if self.on_new_message is not None:  # the pipeline stores it in its own plan
            return await self.on_new_message(message, account_id)
        stored = await self._store.transaction(
            lambda tx: store_incoming_tx(tx, self._events, account_id, message)
        )
        if stored is None:
            return False
        self._events.publish(stored[3])
        return True

    async def _store_owner_activity(self, activity: OwnerActivity) -> None:
        account_id = await self.account_id(activity.account)

        def store(tx: Tx) -> tuple[ChatRecord, StagedEvent | None]:
            chat, _ = tx.upsert_chat(account_id, activity.chat_id)
            _, created = tx.add_incoming(
                account_id,
                chat.id,
                activity.message_id,
                date=activity.date,
                direction=Direction.OUTGOING.value,
            )
            if not created:
                return chat, None
            chat = tx.update_chat(chat.id, last_owner_activity_at=activity.date)
            tx.note_owner_activity(account_id, activity.date)  # "only if offline" reads it
            if self.owner_pause is not None:
                chat = self.owner_pause(tx, activity, chat)
            event = self._events.stage(
                tx,
                "owner.activity",
                {"chat": activity.chat_id, "message_id": activity.message_id},
                account_id=account_id,
                chat_id=chat.id,
            )
            return chat, event

        chat, event = await self._store.transaction(store)
        if event is None:
            return
        self._events.publish(event)
        takeover = _Takeover(activity, chat)
        try:
            await self._hand_over_activity(takeover)
        except StorageUnavailable as exc:
            # Stored, so a retry would find it recorded and stop there: retry the hand-over.
            raise _HandOverPending(takeover, exc) from exc

    async def _hand_over_signal(self, update: _Signal) -> None:
        signal = update.signal
        if isinstance(signal, OwnerRead):
            if self.on_owner_read is not None:
                await self.on_owner_read(signal)
        elif self.on_owner_presence is not None:
            await self.on_owner_presence(signal)

    async def _hand_over_activity(self, takeover: _Takeover) -> None:
        if self.on_owner_activity is not None:
            await self.on_owner_activity(takeover.activity, takeover.chat)

    async def recorded_ids(self, account: str, peer_id: int, ids: list[int]) -> set[int]:
        """Which of these Telegram ids are already stored or held (for the reconciliation
        sweep)."""
        held = {i for i in ids if (account, peer_id, i) in self._held}
        account_id = await self.account_id(account)
        try:
            chat = await self._store.get_chat_by_peer(account_id, peer_id)
        except NotFound:
            return held
        missing = set(await self._store.unrecorded_ids(account_id, chat.id, ids))
        return (set(ids) - missing) | held


def store_incoming_tx(
    tx: Tx, events: EventLog, account_id: int, message: IncomingMessage
) -> Stored:
    """Inside `tx`: record a received message once (with its chat and its event). None when it
    was recorded before. The pipeline's plan runs this in the transaction that decides on it:
    a message is never stored without what is to be done about it."""
    private = message.chat_kind is ChatKind.PRIVATE
    chat, chat_created = tx.upsert_chat(
        account_id,
        message.chat_id,
        kind=message.chat_kind.value,
        title=message.chat_title or message.sender.name,
        username=message.sender.username if private else None,
        is_contact=message.sender.is_contact if private else None,
        is_bot=message.sender.is_bot if private else None,
    )
    phone = message.sender.phone if private and not message.sender.is_self else None
    if phone and chat.channel_data.get("phone") != "+" + phone:
        # how other channels (a call from the same number) recognise this person
        chat = tx.update_chat(chat.id, channel_data={**chat.channel_data, "phone": "+" + phone})
    record, created = tx.add_incoming(
        account_id,
        chat.id,
        message.message_id,
        date=message.date,
        text=message.text,
        kind=message.kind.value,
        sender_id=message.sender.id,
        reply_to_tg_id=message.reply_to,
        duration=message.duration,
    )
    if not created:
        return None
    event = events.stage(
        tx,
        "message.received",
        {
            "chat": message.chat_id,
            "message_id": message.message_id,
            "kind": message.kind.value,
            "sender": message.sender.id,
        },
        account_id=account_id,
        chat_id=chat.id,
    )
    return chat, chat_created, record, event
