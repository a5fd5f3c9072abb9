"""What the repository hands out: frozen, detached snapshots of rows (never ORM objects).

Field names mirror the columns, so `from_row()` can build any of them from a result row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from twin.domain.models import Direction, Failure, MessageKind, ReplyState

__all__ = [
    "AccountRecord",
    "AccountStatus",
    "ApiKeyRecord",
    "AppSessionRecord",
    "ChatRecord",
    "Direction",
    "EntityRecord",
    "EventRecord",
    "Failure",
    "MessageKind",
    "MessageRecord",
    "OwnerActivityRecord",
    "ReplyRecord",
    "ReplyState",
    "StyleProfileRecord",
    "TwinRecord",
]


class AccountStatus(StrEnum):
    NEW = "new"
    CODE_SENT = "code_sent"
    AUTHORIZED = "authorized"
    LOGGED_OUT = "logged_out"


class _Record:
    __slots__ = ()
    _enums: dict[str, type[StrEnum]] = {}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        names = _FIELD_NAMES.get(cls)
        if names is None:
            fields = dataclasses.fields(cls)  # type: ignore[arg-type]
            names = _FIELD_NAMES[cls] = tuple(field.name for field in fields)
        values = {name: row[name] for name in names}
        for name, enum in cls._enums.items():
            value = values[name]
            if value is not None:
                values[name] = enum(value)
        return cls(**values)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class AccountRecord(_Record):
    """An account without its secret: whether a session is stored is all callers may know."""

    id: int
    name: str
    phone: str | None
    tg_user_id: int | None
    username: str | None
    first_name: str | None
    status: AccountStatus
    enabled: bool
    has_session: bool
    channel: str  # "telegram" | "http_chat": which channel this instance serves
    twin_id: int | None  # the twin it answers as (None: the twin named "default")
    created_at: datetime
    updated_at: datetime

    _enums = {"status": AccountStatus}


@dataclass(frozen=True, slots=True)
class EntityRecord(_Record):
    account_id: int
    entity_id: int
    access_hash: int | None
    username: str | None
    phone: str | None
    name: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChatRecord(_Record):
    id: int
    account_id: int
    peer_id: int
    kind: str
    title: str | None
    username: str | None
    is_contact: bool
    is_bot: bool
    paused_until: datetime | None
    overrides: dict[str, Any]
    summary: str | None
    summary_upto_message_id: int | None
    last_incoming_at: datetime | None
    last_outgoing_at: datetime | None
    last_owner_activity_at: datetime | None
    last_away_at: datetime | None
    takeover_started_at: datetime | None  # the first owner message of the running takeover
    external_id: str | None  # the conversation's id on its channel (HTTP thread id)
    channel_data: dict[str, Any]  # the channel's own state of the conversation
    created_at: datetime
    updated_at: datetime

    def is_paused(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now

    def takeover_since(self, now: datetime) -> datetime | None:
        """The first owner message of the takeover pausing the chat now (None: not paused, or
        paused by the owner's own hand)."""
        return self.takeover_started_at if self.is_paused(now) else None


@dataclass(frozen=True, slots=True)
class OwnerActivityRecord(_Record):
    """The owner's last activity on an account (messages, reads, online status)."""

    account_id: int
    active_at: datetime | None
    online_until: datetime | None

    def active_as_of(self, now: datetime) -> datetime | None:
        """When the owner was last active as seen at `now`: now itself while Telegram shows
        them online."""
        if self.online_until is not None and self.online_until > now:
            return now
        return self.active_at


@dataclass(frozen=True, slots=True)
class MessageRecord(_Record):
    id: int
    account_id: int
    chat_id: int
    tg_message_id: int | None
    direction: Direction
    kind: MessageKind
    text: str | None
    transcript: str | None
    duration: float | None
    reply_to_tg_id: int | None
    sender_id: int | None
    date: datetime
    state: ReplyState
    state_reason: str | None
    reply_id: int | None
    bubble_index: int | None
    random_id: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    created_at: datetime
    updated_at: datetime

    _enums = {"direction": Direction, "kind": MessageKind, "state": ReplyState}


@dataclass(frozen=True, slots=True)
class ReplyRecord(_Record):
    id: int
    account_id: int
    chat_id: int
    state: ReplyState
    reason: str | None
    failure: Failure | None
    decision: dict[str, Any]
    reply_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    text: str | None
    flags: dict[str, Any]
    voice: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    _enums = {"state": ReplyState, "failure": Failure}


@dataclass(frozen=True, slots=True)
class StyleProfileRecord(_Record):
    twin_id: int
    data: dict[str, Any]
    cursor: dict[str, Any] | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EventRecord(_Record):
    id: int
    account_id: int | None
    chat_id: int | None
    type: str
    data: dict[str, Any]
    created_at: datetime
    account: str | None  # the account's name
    chat: int | None  # the chat's Telegram peer id
    channel: str | None = None  # the account's channel (telegram, http_chat, talkme)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord(_Record):
    """A named API key without its secret (only the hash is stored)."""

    id: int
    name: str
    prefix: str
    hash: str
    scopes: list[str]
    account_id: int | None
    twin: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    account: str | None  # the bound account's name


@dataclass(frozen=True, slots=True)
class TwinRecord(_Record):
    id: int
    name: str
    settings: dict[str, Any]  # overrides of [twin] / [schedule] / [humanize]
    voice: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord(_Record):
    """An outbound webhook and how its delivery stands."""

    id: int
    account_id: int
    chat_id: int | None
    reply_id: int | None
    key: str  # the idempotency key, the same on every attempt
    url: str
    payload: dict[str, Any]
    state: str  # pending | delivered | dead
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_status: int | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AppSessionRecord(_Record):
    """A browser session of the admin app (its id is the hash of the cookie's secret)."""

    id_hash: str
    principal: str
    key_id: int | None
    csrf: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked: bool  # its stored API key was revoked since
