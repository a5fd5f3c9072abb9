"""Telethon objects → domain values. Pure: no network, no clock; Telethon types stop here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telethon import utils
from telethon.tl import types

from twin.domain.commands import OwnerText
from twin.domain.models import (
    ChatKind,
    IncomingMessage,
    MessageKind,
    OwnerActivity,
    OwnerPresence,
    OwnerRead,
    Sender,
)


def display_name(entity: Any) -> str:
    """A person-readable name for a user or chat (never empty)."""
    name = utils.get_display_name(entity) if entity is not None else ""
    if name:
        return name
    username = getattr(entity, "username", None)
    return f"@{username}" if username else str(getattr(entity, "id", "unknown"))


def sender_from_user(user: Any, fallback_id: int) -> Sender:
    if not isinstance(user, types.User):
        # Anonymous group admins, channels posting in groups…: never a person to answer.
        return Sender(
            id=fallback_id,
            name=display_name(user),
            username=getattr(user, "username", None),
            is_contact=False,
            is_bot=not isinstance(user, types.User) and user is not None,
        )
    return Sender(
        id=user.id,
        name=display_name(user),
        username=user.username,
        is_contact=bool(user.contact or user.mutual_contact),
        is_bot=bool(user.bot),
        is_self=bool(user.is_self),
        phone=user.phone or None,
    )


def chat_kind(chat: Any, *, chat_id: int, owner_id: int | None) -> ChatKind:
    if isinstance(chat, types.User) or chat is None:
        return ChatKind.SAVED if owner_id is not None and chat_id == owner_id else ChatKind.PRIVATE
    if isinstance(chat, types.Chat | types.ChatForbidden):
        return ChatKind.GROUP
    if isinstance(chat, types.Channel | types.ChannelForbidden):
        return ChatKind.SUPERGROUP if getattr(chat, "megagroup", False) else ChatKind.CHANNEL
    return ChatKind.PRIVATE


def media_kind(message: Any) -> tuple[MessageKind, float | None]:
    """Voice notes, audio files and round video notes are what the twin can listen to."""
    document = getattr(message, "document", None)
    if document is None:
        return (MessageKind.TEXT if getattr(message, "message", "") else MessageKind.OTHER), None
    duration: float | None = None
    kind = MessageKind.OTHER
    for attribute in document.attributes:
        if isinstance(attribute, types.DocumentAttributeAudio):
            duration = float(attribute.duration)
            kind = MessageKind.VOICE if attribute.voice else MessageKind.AUDIO
        elif isinstance(attribute, types.DocumentAttributeVideo):
            duration = float(attribute.duration)
            kind = MessageKind.VIDEO_NOTE if attribute.round_message else MessageKind.OTHER
    return kind, duration


def to_incoming(
    account: str,
    message: Any,
    *,
    sender: Any,
    chat: Any,
    owner_id: int | None,
    replies_to_owner: bool = False,
) -> IncomingMessage:
    """A received Telethon message (types.Message or MessageService) as an IncomingMessage."""
    chat_id = utils.get_peer_id(message.peer_id)
    kind, duration = media_kind(message)
    is_service = isinstance(message, types.MessageService)
    reply_header = getattr(message, "reply_to", None)
    reply_to = getattr(reply_header, "reply_to_msg_id", None)
    return IncomingMessage(
        account=account,
        chat_id=chat_id,
        chat_kind=chat_kind(chat, chat_id=chat_id, owner_id=owner_id),
        message_id=message.id,
        sender=sender_from_user(sender, utils.get_peer_id(message.from_id or message.peer_id)),
        date=message.date,
        # NUL is valid in Telegram text but not in PostgreSQL text: it would make the message
        # impossible to store, so it becomes U+FFFD (the replacement character).
        text=(getattr(message, "message", "") or "").replace("\x00", "\ufffd"),
        kind=MessageKind.OTHER if is_service else kind,
        duration=duration,
        reply_to=reply_to,
        # Telegram sets `mentioned` both for @-mentions and for replies to our messages.
        mentions_owner=bool(getattr(message, "mentioned", False)),
        replies_to_owner=replies_to_owner,
        is_service=is_service,
        chat_title=getattr(chat, "title", None) or (display_name(chat) if chat else None),
    )


def to_owner_read(account: str, event: Any, seen_at: datetime) -> OwnerRead:
    """A read receipt of the owner's (events.MessageRead, inbox side)."""
    return OwnerRead(account=account, chat_id=event.chat_id, max_id=event.max_id, date=seen_at)


def to_owner_presence(account: str, status: Any, seen_at: datetime) -> OwnerPresence | None:
    """The owner's own UserStatus; None for the vague ones (recently, last week…), which say
    nothing about when."""
    if isinstance(status, types.UserStatusOnline):
        return OwnerPresence(account=account, online=True, at=seen_at, until=status.expires)
    if isinstance(status, types.UserStatusOffline):
        return OwnerPresence(account=account, online=False, at=status.was_online)
    return None


def to_owner_activity(account: str, message: Any) -> OwnerActivity:
    return OwnerActivity(
        account=account,
        chat_id=utils.get_peer_id(message.peer_id),
        message_id=message.id,
        date=message.date,
        # what the owner wrote themselves: a forward is not their answer
        text="" if getattr(message, "fwd_from", None) else message.message or "",
    )


def to_owner_text(account: str, message: Any, *, saved: bool) -> OwnerText:
    """The owner's message from another device as text: a command if it has the prefix."""
    return OwnerText(
        account=account,
        chat_id=utils.get_peer_id(message.peer_id),
        message_id=message.id,
        date=message.date,
        text=getattr(message, "message", "") or "",
        saved=saved,
        reply_to=getattr(getattr(message, "reply_to", None), "reply_to_msg_id", None),
    )


def mask_phone(phone: str | None) -> str | None:
    """`+79991234567` → `+7999***4567`: enough to recognise, not enough to dial."""
    if not phone:
        return phone
    digits = phone.lstrip("+")
    if len(digits) <= 6:
        return "+" + "*" * len(digits)
    keep = 4 if len(digits) > 8 else 2
    return f"+{digits[:keep]}{'*' * (len(digits) - 2 * keep)}{digits[-keep:]}"


def normalize_phone(phone: str) -> str:
    """The one place phones are normalised: digits only, as the MTProto server expects them."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits


def callback_data(message: Any) -> list[tuple[str, bytes]]:
    """A message's inline buttons that carry callback data: (label, data) each. This layer's
    inline button keeps its data in its type; older ones on themselves."""
    found = []
    for row in getattr(getattr(message, "reply_markup", None), "rows", None) or []:
        for button in row.buttons:
            data = getattr(getattr(button, "type", None), "data", None)
            data = data if data is not None else getattr(button, "data", None)
            if isinstance(data, bytes):
                found.append((getattr(button, "text", ""), data))
    return found
