"""Intake: received messages and owner activity → stored once → handed to the reply pipeline.

Idempotent by construction: the repository records a message once per (account, chat, Telegram
id), and only a *newly* recorded message goes on to the pipeline — so a catch-up that re-delivers
a message, a sweep that finds it again, or two racing paths never produce a second reply.

Storing is one transaction per message (chat, message and its event together): intake is on the
path of every message, so it costs one round trip to the database, not one per statement. With
a pipeline attached (`on_new_message`), the pipeline runs that same transaction and adds its
decision to it: a message is never stored without what is to be done about it, so no crash can
leave a message recorded (and so never delivered again) but unanswered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from twin.domain.models import ChatKind, Direction, IncomingMessage, OwnerActivity
from twin.errors import NotFound
from twin.services.events import EventLog, StagedEvent

log = logging.getLogger("twin.intake")

# (chat, chat_created, record, event) for a newly stored message, None for one already stored
Stored = tuple[Any, bool, Any, StagedEvent] | None
StoreWork = Callable[[Any], Stored]
# (message, account id, the storing work to run in its transaction) -> whether it was new
NewMessageHook = Callable[[IncomingMessage, int, StoreWork], Awaitable[bool]]
OwnerActivityHook = Callable[[OwnerActivity, Any], Awaitable[None]]


class IntakeStore(Protocol):
    async def get_or_create_account(self, name: str) -> Any: ...
    async def upsert_chat(
        self, account_id: int, peer_id: int, **fields: Any
    ) -> tuple[Any, bool]: ...
    async def add_incoming(
        self, account_id: int, chat_id: int, tg_message_id: int, **fields: Any
    ) -> tuple[Any, bool]: ...
    async def update_chat(self, chat_id: int, **fields: Any) -> Any: ...
    async def unrecorded_ids(
        self, account_id: int, chat_id: int, candidate_ids: list[int]
    ) -> Any: ...
    async def get_chat_by_peer(self, account_id: int, peer_id: int) -> Any: ...
    async def transaction(self, work: Callable[[Any], Any]) -> Any: ...


class Intake:
    def __init__(self, store: IntakeStore, events: EventLog) -> None:
        self._store = store
        self._events = events
        self._account_ids: dict[str, int] = {}
        self.on_new_message: NewMessageHook | None = None
        self.on_owner_activity: OwnerActivityHook | None = None

    async def account_id(self, name: str) -> int:
        if name not in self._account_ids:
            self._account_ids[name] = (await self._store.get_or_create_account(name)).id
        return self._account_ids[name]

    async def incoming(self, message: IncomingMessage) -> bool:
        """Store a received message; True if it was new (and so handed to the pipeline)."""
        account_id = await self.account_id(message.account)
        private = message.chat_kind is ChatKind.PRIVATE

        def store(tx: Any) -> Stored:
            chat, chat_created = tx.upsert_chat(
                account_id,
                message.chat_id,
                kind=message.chat_kind.value,
                title=message.chat_title or message.sender.name,
                username=message.sender.username if private else None,
                is_contact=message.sender.is_contact if private else None,
                is_bot=message.sender.is_bot if private else None,
            )
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
            event = self._events.stage(
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

        if self.on_new_message is not None:
            return await self.on_new_message(message, account_id, store)
        stored = await self._store.transaction(store)
        if stored is None:
            return False
        self._events.publish(stored[3])
        return True

    async def owner_activity(self, activity: OwnerActivity) -> None:
        account_id = await self.account_id(activity.account)

        def store(tx: Any) -> tuple[Any, StagedEvent | None]:
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
        if self.on_owner_activity is not None:
            await self.on_owner_activity(activity, chat)

    async def recorded_ids(self, account: str, peer_id: int, ids: list[int]) -> set[int]:
        """Which of these Telegram ids are already stored (for the reconciliation sweep)."""
        account_id = await self.account_id(account)
        try:
            chat = await self._store.get_chat_by_peer(account_id, peer_id)
        except NotFound:
            return set()
        missing = set(await self._store.unrecorded_ids(account_id, chat.id, ids))
        return set(ids) - missing
