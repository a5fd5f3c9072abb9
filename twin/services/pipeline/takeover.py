"""The owner and the contact change what a pending reply answers: the owner writing in the chat
from another device (takeover: the chat's one pause, twin.services.chats), an edited message
(the brain reads the new text) and deleted messages (a reply left with nothing is cancelled)."""

from __future__ import annotations

import contextlib

from twin.db.records import ChatRecord
from twin.domain.decide import takeover_until
from twin.domain.models import Direction, OwnerActivity, ReplyState, SkipReason
from twin.errors import Conflict, NotFound
from twin.ports import Clock, Store
from twin.services.chats import KEEP, ChatHold
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.pipeline.caches import Behaviours
from twin.services.pipeline.states import BEFORE_SENDING


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
    ) -> None:
        self._repo = repo
        self._events = events
        self._clock = clock
        self._directory = directory
        self._behaviours = behaviours
        self._holds = holds

    async def on_owner_activity(self, activity: OwnerActivity, chat: ChatRecord) -> None:
        """The owner wrote in this chat: step back (pause) and cancel what was pending — with
        `takeover_minutes = 0` no pause, but what was pending is still the owner's."""
        behaviour = await self._behaviours.of_chat(self._repo, chat)
        until = takeover_until(self._clock.now(), behaviour.twin.takeover_minutes)
        await self._holds.hold(chat, KEEP if until is None else until)

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
            await self._cancel_if_empty(reply_id)

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
