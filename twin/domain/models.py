"""Value objects shared by the whole daemon.

Pure and stdlib-only: adapters translate Telethon/HTTP payloads into these, and everything past
intake (policies, services, storage) speaks only these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    SUPERGROUP = "supergroup"
    CHANNEL = "channel"
    SAVED = "saved"  # the owner's own "Saved Messages" chat


class MessageKind(StrEnum):
    TEXT = "text"
    VOICE = "voice"
    AUDIO = "audio"
    VIDEO_NOTE = "video_note"
    OTHER = "other"


class Direction(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


# A pause with no end (manual "until resumed", escalation): far enough never to expire.
PAUSED_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], value: object, key: str) -> E:
    """`value` as a member of `enum`, else a ValueError naming the config `key` and the
    choices (settings reach the domain as plain strings)."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise ValueError(f"{key}: {value!r} is not one of {choices}") from None


def require_aware(value: datetime, name: str) -> datetime:
    """Naive datetimes are refused everywhere in the domain: a wrong-zone guess is a silent bug."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


@dataclass(frozen=True, slots=True)
class Sender:
    id: int
    name: str
    username: str | None
    is_contact: bool
    is_bot: bool
    is_self: bool = False
    phone: str | None = None  # digits, when Telegram shows it (the owner's contacts)


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    account: str
    chat_id: int
    chat_kind: ChatKind
    message_id: int
    sender: Sender
    date: datetime
    text: str
    kind: MessageKind = MessageKind.TEXT
    duration: float | None = None  # seconds, for voice/audio/video notes
    reply_to: int | None = None
    mentions_owner: bool = False
    replies_to_owner: bool = False
    is_service: bool = False  # joins, pins, calls…: nothing a person would answer
    chat_title: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.date, "IncomingMessage.date")
        # Stored and compared in UTC so equality does not depend on the adapter's zone.
        object.__setattr__(self, "date", self.date.astimezone(UTC))
        if self.duration is not None and self.duration < 0:
            raise ValueError(f"IncomingMessage.duration must be >= 0, got {self.duration}")

    @property
    def is_group(self) -> bool:
        return self.chat_kind in (ChatKind.GROUP, ChatKind.SUPERGROUP)

    @property
    def is_audio(self) -> bool:
        return self.kind in (MessageKind.VOICE, MessageKind.AUDIO, MessageKind.VIDEO_NOTE)


@dataclass(frozen=True)
class SendResult:
    """What a channel's send reports: the message's id there, or that the channel had already
    seen this random_id (the message was sent before a crash; it is not sent again)."""

    message_id: int | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class OwnerActivity:
    """The owner wrote in a chat from another device: the twin must step back there."""

    account: str
    chat_id: int
    message_id: int
    date: datetime
    text: str = ""  # what the owner wrote (a "followed up" correction is made of it)

    def __post_init__(self) -> None:
        require_aware(self.date, "OwnerActivity.date")
        object.__setattr__(self, "date", self.date.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class OwnerRead:
    """The owner read a chat from another device up to `max_id` (never the twin's own read
    receipts): it cancels a reply waiting out its grace period, but is no takeover."""

    account: str
    chat_id: int
    max_id: int
    date: datetime  # when it was seen (a read receipt carries no date)

    def __post_init__(self) -> None:
        require_aware(self.date, "OwnerRead.date")
        object.__setattr__(self, "date", self.date.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class OwnerPresence:
    """The owner's own online status as Telegram reports it to the daemon (their devices set
    it; the daemon never does)."""

    account: str
    online: bool
    at: datetime  # online: when seen; offline: when they were last online
    until: datetime | None = None  # online: when the status expires unless renewed

    def __post_init__(self) -> None:
        require_aware(self.at, "OwnerPresence.at")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        if self.until is not None:
            require_aware(self.until, "OwnerPresence.until")
            object.__setattr__(self, "until", self.until.astimezone(UTC))


class ReplyState(StrEnum):
    RECEIVED = "received"
    SCHEDULED = "scheduled"
    GENERATING = "generating"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES: frozenset[ReplyState] = frozenset(
    {ReplyState.SENT, ReplyState.SKIPPED, ReplyState.FAILED, ReplyState.CANCELLED}
)


class Failure(StrEnum):
    """Why a reply is `failed` (`replies.failure`)."""

    # A dependency was down (5xx, 429, timeouts, connection errors) for all of max_attempts:
    # re-queued automatically once it works again, if the message is recent enough.
    OUTAGE = "outage"
    # A refusal no retry can change (invalid request, content refused, an internal error):
    # re-queued only by hand (POST /replies/{id}/retry).
    PERMANENT = "permanent"
    # An outage failure found too old to re-queue (its message is older than
    # telegram.max_catch_up_age when the dependency came back): stays failed.
    EXPIRED = "expired"


_TRANSITIONS: dict[ReplyState, frozenset[ReplyState]] = {
    ReplyState.RECEIVED: frozenset(
        {ReplyState.SCHEDULED, ReplyState.SKIPPED, ReplyState.CANCELLED, ReplyState.FAILED}
    ),
    ReplyState.SCHEDULED: frozenset(
        {ReplyState.GENERATING, ReplyState.SKIPPED, ReplyState.CANCELLED, ReplyState.FAILED}
    ),
    # Back to SCHEDULED = retry later (provider 429/timeout): nothing was sent yet, so
    # regenerating is safe. The brain may also decline (escalated → SKIPPED).
    ReplyState.GENERATING: frozenset(
        {
            ReplyState.SENDING,
            ReplyState.SCHEDULED,
            ReplyState.SKIPPED,
            ReplyState.CANCELLED,
            ReplyState.FAILED,
        }
    ),
    # No way back to SCHEDULED: a bubble may already be out, and regenerating would send a
    # different text. Retries of a send stay in SENDING with the persisted random_id.
    # CANCELLED is allowed because the owner may take over while the twin is "typing".
    ReplyState.SENDING: frozenset({ReplyState.SENT, ReplyState.FAILED, ReplyState.CANCELLED}),
    # The one terminal state that may be left: re-queued after an outage or by hand, to
    # SCHEDULED when nothing was stored to send, else to SENDING (the stored bubbles resume
    # with their random_ids; regenerating could send a second, different text). Several
    # outage failures of one chat are answered by one re-queued reply: the others are
    # SKIPPED as superseded. One whose chat the owner wrote in since is CANCELLED instead.
    ReplyState.FAILED: frozenset(
        {ReplyState.SCHEDULED, ReplyState.SENDING, ReplyState.SKIPPED, ReplyState.CANCELLED}
    ),
}


def can_transition(src: ReplyState, dst: ReplyState) -> bool:
    """Whether a reply may move from `src` to `dst`; terminal states never move, but for
    a failed reply's re-queue."""
    return dst in _TRANSITIONS.get(src, frozenset())


def is_terminal(state: ReplyState) -> bool:
    return state in TERMINAL_STATES


class SkipReason(StrEnum):
    # account / recipient rules
    DISABLED = "disabled"
    OWN_MESSAGE = "own_message"
    EXCLUDED = "excluded"
    NOT_INCLUDED = "not_included"
    BOT = "bot"
    CHANNEL = "channel"
    SAVED_MESSAGES = "saved_messages"
    SERVICE = "service"
    CONTACT = "contact"
    NON_CONTACT = "non_contact"
    NEW_CHAT = "new_chat"
    EXISTING_CHAT = "existing_chat"
    GROUP_NOT_ADDRESSED = "group_not_addressed"
    GROUPS_DISABLED = "groups_disabled"
    # timing
    OUTSIDE_HOURS = "outside_hours"
    AWAY_ALREADY_SENT = "away_already_sent"
    OWNER_ONLINE = "owner_online"  # away message withheld: the owner is around (only if offline)
    PAUSED = "paused"
    OWNER_READ = "owner_read"  # the owner read the chat from another device within the grace
    RATE_LIMITED_CHAT = "rate_limited_chat"
    RATE_LIMITED_ACCOUNT = "rate_limited_account"
    # content / later pipeline stages
    TOO_LONG_VOICE = "too_long_voice"
    ESCALATED = "escalated"
    SUPERSEDED = "superseded"
    EDITED = "edited"
    DELETED = "deleted"
    NO_CLIENT = "no_client"  # an HTTP channel's job left unfinished: its client is gone
    # the account's mode (owner or safety governor, twin.domain.safety)
    ACCOUNT_OFF = "account_off"  # the twin is off on this account
    DRAFTED = "drafted"  # draft mode: the reply was written for the owner, not sent
