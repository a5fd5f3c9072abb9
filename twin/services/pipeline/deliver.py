"""Deliver: how a channel hands a reply over. Only this differs per channel (Telegram: read
receipt, typing, bubbles with stored random_ids, voice notes; next: HTTP chat, bots, webhooks);
a draft mode stops before it. Telegram's is telegram_delivery.TelegramDelivery."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.ports import Tx
from twin.services.pipeline.records import Draft, Sending
from twin.services.pipeline.runs import Run
from twin.services.policy import Behaviour


class Delivery(Protocol):
    async def open(
        self, reply: ReplyRecord, chat: ChatRecord, incoming: Sequence[MessageRecord]
    ) -> Awaitable[None]:
        """Check the channel can deliver (raise if not) and return what the contact sees
        first (Telegram: the read receipt). It runs while the reply is generated and is
        awaited before the reply is committed to `sending` (fastpath.read_ahead)."""
        ...

    def stage_tx(
        self,
        tx: Tx,
        reply: ReplyRecord,
        draft: Draft,
        behaviour: Behaviour,
        linked: Sequence[MessageRecord],
    ) -> list[MessageRecord]:
        """Inside the transaction that moves the reply to `sending`: store its parts (with
        whatever makes their delivery idempotent), committed before anything is sent."""
        ...

    async def deliver(self, sending: Sending, run: Run) -> None:
        """Deliver the staged parts not yet delivered, record each, and finish the reply
        (`sent`); stop quietly once `run.cancelled` is set. Raises Conflict when the reply
        stopped being `sending` under it."""
        ...
