"""Sending on the owner's behalf with exactly-once semantics.

The random_id of every outgoing message is stored *before* it is sent. If the process dies after
Telegram accepted the message but before we recorded its id, the retry reuses the stored
random_id and Telegram answers RANDOM_ID_DUPLICATE instead of sending a second copy.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twin.domain.models import MessageKind, ReplyState
from twin.errors import PolicyError, TwinError
from twin.services.events import EventLog

if TYPE_CHECKING:
    from twin.db.records import ChatRecord, MessageRecord
    from twin.ports import Messenger, Store
    from twin.services.safety import Safety
    from twin.voice.models import VoiceNote


def new_random_id() -> int:
    """A random signed 64-bit id, never 0 (what MTProto's random_id is)."""
    return secrets.randbits(63) + 1


@dataclass(frozen=True)
class Sent:
    chat_id: int  # Telegram peer id
    message_id: int | None  # owner-side Telegram message id (None if only known as duplicate)
    record_id: int


class Outbox:
    def __init__(self, repo: Store, events: EventLog, safety: Safety | None = None) -> None:
        self._repo = repo
        self._events = events
        self._safety = safety

    async def _first_contact(
        self, account: Messenger, chat: ChatRecord, created: bool, allowed: bool | None
    ) -> None:
        """Never message first unless asked: a message to a user the account never exchanged
        messages with needs `allowed` (the owner's explicit allow_first_contact) and counts
        against the governor's first-contact budget. `allowed=None`: not a first message by
        construction (an answer, a bot's reply)."""
        if allowed is None or self._safety is None or getattr(account, "is_bot", False):
            return
        if chat.peer_id <= 0:
            return  # groups and channels the account is in are not someone new
        me = getattr(account, "me", None)
        if me is not None and chat.peer_id == me.id:
            return
        known = not created and (chat.last_incoming_at or chat.last_outgoing_at)
        if known or await account.has_history(chat.peer_id):
            return
        if not allowed:
            limit = self._safety.limits.first_contacts_daily
            raise PolicyError(
                f"this account has never exchanged messages with chat {chat.peer_id}: the twin "
                "does not message first; to open the conversation anyway pass "
                f"allow_first_contact: true (at most {limit} a day, [safety] "
                "first_contacts_daily)"
            )
        await self._safety.first_contact(account.name)

    async def send_text(
        self,
        account: Messenger,
        account_id: int,
        chat: int | str,
        text: str,
        buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
        *,
        allow_first_contact: bool | None = None,
    ) -> Sent:
        peer_id = await account.resolve_peer_id(chat)
        chat_record, created = await self._repo.upsert_chat(account_id, peer_id)
        await self._first_contact(account, chat_record, created, allow_first_contact)
        record = await self._repo.add_outgoing(
            account_id,
            chat_record.id,
            text=text,
            kind=MessageKind.TEXT,
            random_id=new_random_id(),
            state=ReplyState.SENDING,
        )
        return await self._deliver(account, record, peer_id, chat_record.id, buttons=buttons)

    async def send_voice(
        self,
        account: Messenger,
        account_id: int,
        chat: int | str,
        text: str,
        note: VoiceNote,
        *,
        allow_first_contact: bool | None = None,
    ) -> Sent:
        peer_id = await account.resolve_peer_id(chat)
        chat_record, created = await self._repo.upsert_chat(account_id, peer_id)
        await self._first_contact(account, chat_record, created, allow_first_contact)
        record = await self._repo.add_outgoing(
            account_id,
            chat_record.id,
            text=text,
            kind=MessageKind.VOICE,
            random_id=new_random_id(),
            state=ReplyState.SENDING,
            duration=note.duration_s,
        )
        return await self._deliver(account, record, peer_id, chat_record.id, note=note)

    async def _deliver(
        self,
        account: Messenger,
        record: MessageRecord,
        peer_id: int,
        chat_id: int,
        note: VoiceNote | None = None,
        buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> Sent:
        try:
            if note is None and buttons:
                result = await account.send_text(
                    peer_id, record.text, random_id=record.random_id, buttons=buttons
                )
            elif note is None:
                result = await account.send_text(peer_id, record.text, random_id=record.random_id)
            else:
                result = await account.send_voice(
                    peer_id,
                    note.ogg,
                    duration=note.duration_s,
                    waveform=note.waveform,
                    random_id=record.random_id,
                )
        except TwinError as exc:
            await self._repo.update_message(
                record.id, state=ReplyState.FAILED, state_reason=type(exc).__name__
            )
            raise
        if result.message_id is not None:
            await self._repo.mark_sent(record.id, result.message_id)
        else:
            await self._repo.update_message(record.id, state=ReplyState.SENT)
        await self._events.emit(
            "message.sent",
            {"chat": peer_id, "message_id": result.message_id, "manual": True},
            account_id=record.account_id,
            chat_id=chat_id,
        )
        return Sent(chat_id=peer_id, message_id=result.message_id, record_id=record.id)
