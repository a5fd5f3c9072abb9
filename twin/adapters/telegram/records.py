"""What a Telegram account hands back: plain frozen records, never Telethon objects.

`SendResult` is the domain's (twin.domain.models), re-exported here with the account's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twin.adapters.telegram import mapping
from twin.domain.models import SendResult
from twin.domain.timing import HistoryMessage

__all__ = ["CodeSent", "Dialog", "LoginResult", "OwnPage", "SendResult", "TelegramUser"]


@dataclass(frozen=True)
class CodeSent:
    phone_code_hash: str
    type: str
    timeout: int | None


@dataclass(frozen=True)
class TelegramUser:
    id: int
    name: str
    username: str | None
    phone: str | None
    bot: bool = False  # a bot (logged in by token): no dialogs, read marks or presence

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "phone": mapping.mask_phone(self.phone),
        }


@dataclass(frozen=True)
class LoginResult:
    status: str  # "authorized" | "password_required"
    user: TelegramUser | None = None
    hint: str | None = None


@dataclass(frozen=True)
class OwnPage:
    """A page of history as `twin style build` reads it."""

    own: list[tuple[int, str, datetime]]  # the owner's messages: id, text, date
    scanned: int  # messages in the page
    next_before: int | None  # the next page's cursor; None: the history ends here
    # every message of the page but service ones (joins, calls…), newest first, for the
    # reply timing (who wrote when, and how long)
    timeline: tuple[HistoryMessage, ...] = ()


@dataclass(frozen=True)
class Dialog:
    id: int
    title: str
    username: str | None
    kind: str
    unread_count: int
    last_message: str | None
    last_message_at: datetime | None
