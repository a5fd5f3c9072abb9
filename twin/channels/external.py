"""The external messenger channel: a SaaS messenger POSTs its user's messages to the twin
(`POST /api/v1/external/messages`) and receives the twin's messages by webhook.

In: the message is stored with its job (due now) in one transaction before the 202, so it is
never lost; a message that arrives while the conversation's job has not started joins it. The
reply worker answers the job like a Telegram one (admission, memory, prompt, brain, retries on
provider outages); this channel brings the delivery: the answer (or the escalation) and its
webhook are stored in one transaction (twin.channels.conversations' deliver, with the outbox
row), and twin.channels.webhooks posts it until the receiver says 2xx.

An operator's message (`message_type: operator`) is the owner's turn: stored as sent by the
owner, and the twin pauses in that dialogue until resumed (`POST /chats/{id}/resume`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from twin.channels.conversations import Conversations
from twin.channels.records import ChannelParts, Inbound, Planned, peer_of
from twin.config import Settings
from twin.db.records import AccountRecord, ChatRecord, MessageRecord, ReplyRecord
from twin.domain.models import PAUSED_FOREVER, ReplyState
from twin.domain.webhooks import Turn, share_token, turn_fields
from twin.locks import KeyedLocks
from twin.ports import Tx
from twin.services.events import StagedEvent
from twin.services.pipeline.generate import Escalation
from twin.services.pipeline.records import Draft

__all__ = ["CHANNEL", "Accepted", "ExternalChannel", "ExternalMessage"]

CHANNEL = "external"


@dataclass(frozen=True, slots=True)
class ExternalMessage:
    chat_id: str  # the dialogue in the caller's system (e.g. a Telegram user id there)
    message: str
    task_id: str | None = None
    channel_id: str | None = None
    title: str | None = None  # the user's name
    contacts: Any = None  # as the caller sent them; echoed in every webhook
    message_type: str = "user"  # user | operator


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: int
    thread_id: str


class ExternalChannel:
    def __init__(
        self,
        settings: Settings,
        parts: ChannelParts,
        *,
        wake_sender: Callable[[], None] | None = None,
    ) -> None:
        self.settings = section = settings.channels.external
        self._repo = parts.repo
        self._events = parts.events
        self._clock = parts.clock
        self._wake_sender = wake_sender
        self.conversations = Conversations.of(CHANNEL, section, parts, queued=True)
        self._turns = KeyedLocks()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @staticmethod
    def thread_of(message: ExternalMessage) -> str:
        """The conversation: the caller's chat, within its channel when it names one."""
        if message.channel_id:
            return f"{message.channel_id}:{message.chat_id}"
        return message.chat_id

    # --- in ------------------------------------------------------------------------------------
    async def receive(self, message: ExternalMessage) -> Accepted:
        if message.message_type == "operator":
            return await self._operator(message)
        thread = self.thread_of(message)
        data = {
            key: value
            for key, value in (
                ("external_chat_id", message.chat_id),
                ("task_id", message.task_id),
                ("channel_id", message.channel_id),
                ("title", message.title),
                ("contacts", message.contacts),
            )
            if value is not None
        }
        planned = await self.conversations.plan(
            Inbound(thread, message.message, user_name=message.title, data=data)
        )
        return Accepted(planned.message.id, thread)

    async def _operator(self, message: ExternalMessage) -> Accepted:
        """A person answered in the caller's system: the owner's turn, and the twin pauses."""
        account = await self.conversations.instance()
        thread = self.thread_of(message)
        now = self._clock.now()

        def store(tx: Tx) -> tuple[MessageRecord, StagedEvent]:
            chat, _ = tx.upsert_chat(
                account.id,
                peer_of(thread),
                kind="private",
                title=message.title,
                external_id=thread,
            )
            record = tx.add_outgoing(
                account.id, chat.id, text=message.message, state=ReplyState.SENT, date=now
            )
            tx.update_chat(
                chat.id,
                paused_until=PAUSED_FOREVER,
                last_outgoing_at=now,
                last_owner_activity_at=now,
            )
            staged = self._events.stage(
                tx,
                "conversation.operator",
                {
                    "chat": chat.peer_id,
                    "thread": thread,
                    "channel": CHANNEL,
                    "message_id": record.id,
                },
                account_id=account.id,
                chat_id=chat.id,
            )
            return record, staged

        record, staged = await self._repo.transaction(store)
        self._events.publish(staged)
        return Accepted(record.id, thread)

    # --- the worker's side (twin.services.pipeline.execute.ChannelDelivery) ---------------------
    @asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """One job of a conversation at a time, in the order they were handed over."""
        async with self._turns.hold(chat_id):
            yield

    async def deliver(
        self,
        reply: ReplyRecord,
        chat: ChatRecord,
        incoming: list[MessageRecord],
        result: Draft | Escalation,
    ) -> None:
        """The answer stored as sent (or the escalation) with its webhooks, in one
        transaction; then the sender is woken."""
        planned = Planned(chat, incoming[-1], reply)
        user_text = "\n".join(m.text or m.transcript or "" for m in incoming)
        escalated = isinstance(result, Escalation)
        flags = result.flags
        turn = Turn(user_text, flags.get("intent"), escalated, bool(flags.get("end_conversation")))

        def also(tx: Tx, done: ReplyRecord, message_id: int | None) -> None:
            text = (result.reply.text if isinstance(result, Escalation) else result.text) or ""
            fields = {**turn_fields(turn), "reply_id": done.id}
            kinds = ["operator_requested" if escalated else "message"]
            if fields["close"]:
                kinds.append("dialog_closed")
            for kind in kinds:
                payload = self._payload(chat, kind, message_id, text, "bot", fields)
                self._queue_tx(tx, chat, payload, done.id)

        await self.conversations.deliver(planned, result, also)
        self.wake_sender()

    def operator_requested_tx(self, tx: Tx, chat: ChatRecord, fields: Mapping[str, Any]) -> None:
        """Queue `operator_requested` for a conversation of another channel (the conversation
        API's `escalate`), in the caller's transaction."""
        extra = {"operator": True, "close": False, "success": False, **fields}
        self._queue_tx(
            tx, chat, self._payload(chat, "operator_requested", None, "", "operator", extra)
        )

    async def push(self, instance: AccountRecord, thread: str, text: str, message_type: str) -> int:
        """A message sent on the owner's behalf (`POST /api/v1/messaging/send`): stored as the
        conversation's turn and queued as its webhook, in one transaction."""
        now = self._clock.now()

        def push(tx: Tx) -> int:
            chat, _ = tx.upsert_chat(
                instance.id, peer_of(thread), kind="private", external_id=thread
            )
            record = tx.add_outgoing(
                instance.id, chat.id, text=text, state=ReplyState.SENT, date=now
            )
            tx.update_chat(chat.id, last_outgoing_at=now)
            fields = {"operator": message_type == "operator"}
            payload = self._payload(chat, "message", record.id, text, message_type, fields)
            self._queue_tx(tx, chat, payload)
            return record.id

        message_id = await self._repo.transaction(push)
        self.wake_sender()
        return message_id

    def wake_sender(self) -> None:
        if self._wake_sender is not None:
            self._wake_sender()

    # --- out -----------------------------------------------------------------------------------
    def _payload(
        self,
        chat: ChatRecord,
        wh_type: str,
        message_id: int | None,
        text: str,
        message_type: str,
        fields: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A webhook's fields: the conversation's (from its channel_data), the message's,
        then `fields` (the turn's judgement, an escalation's reason…), then the links."""
        data = chat.channel_data
        return {
            "wh_type": wh_type,
            "company_id": self.settings.company_id,
            "channel_id": data.get("channel_id", data.get("platform")),
            "task_id": data.get("task_id"),
            "thread_id": chat.external_id,
            "external_chat_id": data.get("external_chat_id", data.get("user_id")),
            "message_id": message_id,
            "message_text": text,
            "message_type": message_type,
            "sent_at": self._clock.now().isoformat(),  # when the message was stored
            "title": data.get("title") or chat.title,
            "contacts": data.get("contacts"),
            **fields,
            **self._links(chat),
        }

    def _links(self, chat: ChatRecord) -> dict[str, str | None]:
        base = self.settings.panel_base_url.rstrip("/")
        secret = self.settings.webhook_secret
        if not base or secret is None:
            return {"panel_url": None, "share_url": None}
        expires = self._clock.now() + timedelta(seconds=self.settings.share_ttl)
        token = share_token(secret.get_secret_value(), chat.account_id, chat.id, expires)
        return {
            "panel_url": f"{base}/admin/#/chats/{self.settings.instance}/{chat.peer_id}",
            "share_url": f"{base}/share/{token}",
        }

    def _queue_tx(
        self, tx: Tx, chat: ChatRecord, payload: dict[str, Any], reply_id: int | None = None
    ) -> None:
        tx.add_delivery(
            account_id=chat.account_id,
            key=uuid.uuid4().hex,
            url=self.settings.webhook_url,
            payload=payload,
            now=self._clock.now(),
            chat_id=chat.id,
            reply_id=reply_id,
        )
