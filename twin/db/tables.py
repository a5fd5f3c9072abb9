"""ORM models: the whole schema of the daemon (see migrations/versions for its history).

Conventions: surrogate `id` keys (`ID`), BIGINT for every Telegram id (users, chats, messages,
access hashes, random ids), aware UTC timestamps (`UTCDateTime`), JSON documents via `sa.JSON`,
short strings for states. Changing anything here needs a new Alembic revision: the drift test in
tests/db compares these models with the migrated database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import ID, Base, UTCDateTime, one_of, utcnow

ACCOUNT_STATUSES = ("new", "code_sent", "authorized", "logged_out")
DIRECTIONS = ("incoming", "outgoing")
MESSAGE_KINDS = ("text", "voice", "audio", "video_note", "other")
STATES = (
    "received",
    "scheduled",
    "generating",
    "sending",
    "sent",
    "skipped",
    "failed",
    "cancelled",
)
FAILURES = ("outage", "permanent", "expired")  # twin.domain.models.Failure


def _account_fk(*, primary_key: bool = False) -> Mapped[int]:
    return mapped_column(
        ID,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def _created() -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, server_default=sa.func.now()
    )


def _updated() -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=sa.func.now(),
    )


def _json(*, nullable: bool = False) -> Mapped[Any]:
    if nullable:
        return mapped_column(sa.JSON(none_as_null=True), nullable=True)
    return mapped_column(sa.JSON(), nullable=False, default=dict, server_default=sa.text("'{}'"))


class Account(Base):
    """One Telegram user account the twin acts for. `session_data` is AES-GCM ciphertext."""

    __tablename__ = "accounts"
    __table_args__ = (sa.CheckConstraint(one_of("status", ACCOUNT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    tg_user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    username: Mapped[str | None] = mapped_column(sa.String(64))
    first_name: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="new", server_default="new"
    )
    session_data: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    update_state: Mapped[dict[str, Any] | None] = _json(nullable=True)
    enabled: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=True, server_default=sa.true()
    )
    # Which channel this instance serves: "telegram" (a user account) or "http_chat".
    channel: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="telegram", server_default="telegram"
    )
    # The twin it answers as (NULL: the twin named "default").
    twin_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("twins.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Entity(Base):
    """Telethon's entity cache (marked peer id → access hash, username, phone) per account."""

    __tablename__ = "entities"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "entity_id"),
        sa.Index("ix_entities_account_username", "account_id", "username"),
        sa.Index("ix_entities_account_phone", "account_id", "phone"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = _account_fk()
    entity_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    access_hash: Mapped[int | None] = mapped_column(sa.BigInteger)
    username: Mapped[str | None] = mapped_column(sa.String(64))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    name: Mapped[str | None] = mapped_column(sa.String(256))
    updated_at: Mapped[datetime] = _updated()


class Chat(Base):
    """A dialog of an account, with its pause state, per-chat policy and rolling summary."""

    __tablename__ = "chats"
    __table_args__ = (sa.UniqueConstraint("account_id", "peer_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = _account_fk()
    peer_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="private", server_default="private"
    )
    title: Mapped[str | None] = mapped_column(sa.String(256))
    username: Mapped[str | None] = mapped_column(sa.String(64))
    is_contact: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    is_bot: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overrides: Mapped[dict[str, Any]] = _json()
    summary: Mapped[str | None] = mapped_column(sa.Text)
    summary_upto_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_incoming_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_outgoing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_owner_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_away_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The first owner message of the takeover that set `paused_until` (NULL: no takeover, or a
    # pause of the owner's own: API pause, escalation); a takeover is capped from it.
    takeover_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The conversation's id on its channel (the HTTP chat API's thread id); NULL on Telegram.
    external_id: Mapped[str | None] = mapped_column(sa.String(128))
    # What a channel keeps about the conversation (TalkMe: session, phone, a held answer).
    channel_data: Mapped[dict[str, Any]] = _json()
    # Contact memory: the newest message whose facts were extracted, and its date.
    memory_upto_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    memory_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class OwnerActivity(Base):
    """The owner's last activity on an account, from any device: messages, read receipts,
    online status (what "only if offline" and the grace period read). One row per account."""

    __tablename__ = "owner_activity"

    account_id: Mapped[int] = _account_fk(primary_key=True)
    active_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # While Telegram shows the owner online: when that status expires unless renewed.
    online_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = _updated()


class Reply(Base):
    """The durable reply job for one or more incoming messages of a chat.

    Due when `reply_at <= now`, `next_attempt_at` (retry back-off) is unset or past, and no live
    lease (`lease_until`) is held by a worker.
    """

    __tablename__ = "replies"
    __table_args__ = (
        sa.CheckConstraint(one_of("state", STATES), name="state"),
        sa.CheckConstraint("attempts >= 0", name="attempts"),
        sa.CheckConstraint(one_of("failure", FAILURES), name="failure"),
        sa.Index("ix_replies_state_next_attempt_at", "state", "next_attempt_at"),
        # Outage failures waiting for the dependency to come back (few; most rows are NULL).
        sa.Index("ix_replies_failure", "failure"),
        sa.Index("ix_replies_state_reply_at", "state", "reply_at"),
        # The rate limits count recent replies (see RepliesMixin.count_replies), per chat too.
        sa.Index("ix_replies_chat_id_state_finished_at", "chat_id", "state", "finished_at"),
        sa.Index("ix_replies_state_finished_at", "state", "finished_at", "account_id"),
        # A conversation's newest job (GET /conversations: escalated or not).
        sa.Index("ix_replies_chat_id_id", "chat_id", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = _account_fk()
    chat_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    state: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="scheduled", server_default="scheduled"
    )
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    # why a `failed` reply failed (Failure: outage | permanent | expired); NULL otherwise
    failure: Mapped[str | None] = mapped_column(sa.String(16))
    decision: Mapped[dict[str, Any]] = _json()
    reply_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # which process holds the lease (cluster_processes.id; NULL: a process alone on its
    # database): a dead process's leases are voided without waiting for them to expire
    leased_by: Mapped[str | None] = mapped_column(sa.String(32))
    text: Mapped[str | None] = mapped_column(sa.Text)
    flags: Mapped[dict[str, Any]] = _json()
    voice: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    prompt_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    completion_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    cost_usd: Mapped[float | None] = mapped_column(sa.Double)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Message(Base):
    """A message of a chat: observed (intake, idempotent per Telegram id) or sent by the twin.

    For incoming messages `state` records how the twin handled them; for the twin's outgoing
    bubbles it tracks the send, with `random_id` persisted before the send so a retry after a
    crash can never produce a duplicate.
    """

    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "chat_id", "tg_message_id"),
        sa.UniqueConstraint("account_id", "random_id"),
        sa.CheckConstraint(one_of("direction", DIRECTIONS), name="direction"),
        sa.CheckConstraint(one_of("kind", MESSAGE_KINDS), name="kind"),
        sa.CheckConstraint(one_of("state", STATES), name="state"),
        sa.Index("ix_messages_chat_id_date_id", "chat_id", "date", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = _account_fk()
    chat_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    tg_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    direction: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    kind: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="text", server_default="text"
    )
    text: Mapped[str | None] = mapped_column(sa.Text)
    transcript: Mapped[str | None] = mapped_column(sa.Text)
    duration: Mapped[float | None] = mapped_column(sa.Double)
    reply_to_tg_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    sender_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    date: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    state: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="received", server_default="received"
    )
    state_reason: Mapped[str | None] = mapped_column(sa.String(64))
    reply_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("replies.id", ondelete="SET NULL"), index=True
    )
    bubble_index: Mapped[int | None] = mapped_column(sa.Integer)
    random_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    prompt_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    completion_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    cost_usd: Mapped[float | None] = mapped_column(sa.Double)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class AccountSettings(Base):
    """Per-account overrides of the [twin]/[schedule]/[humanize] sections, edited via the API."""

    __tablename__ = "account_settings"

    account_id: Mapped[int] = _account_fk(primary_key=True)
    data: Mapped[dict[str, Any]] = _json()
    updated_at: Mapped[datetime] = _updated()


class StyleProfile(Base):
    """A twin's writing style learnt by `twin style build` (from the messages of an account
    that answers as it); `cursor` is the build's resume point."""

    __tablename__ = "twin_styles"

    twin_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("twins.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[dict[str, Any]] = _json()
    cursor: Mapped[dict[str, Any] | None] = _json(nullable=True)
    updated_at: Mapped[datetime] = _updated()


class Event(Base):
    """Audit log and the source of `GET /events` (SSE): `id` is the Last-Event-ID."""

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    chat_id: Mapped[int | None] = mapped_column(ID, sa.ForeignKey("chats.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    data: Mapped[dict[str, Any]] = _json()
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, server_default=sa.func.now(), index=True
    )


class ApiKey(Base):
    """A named API key: only its SHA-256 is stored (the key is shown once, at creation)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON(), nullable=False)
    account_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    twin: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Twin(Base):
    """A digital twin: overrides of the behaviour sections ([twin] persona and reply policy,
    [schedule], [humanize]) over config.toml, and its voice. Accounts and channel instances
    answer as one twin (`accounts.twin_id`; NULL: the twin named `default`)."""

    __tablename__ = "twins"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    settings: Mapped[dict[str, Any]] = _json()
    voice: Mapped[dict[str, Any]] = _json()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


DELIVERY_STATES = ("pending", "delivered", "dead")


class WebhookDelivery(Base):
    """An outbound webhook (the external messenger channel): kept until its receiver answers
    2xx (`delivered`), retried with backoff until `max_age`, then `dead` with the last error.
    `key` is its idempotency key, the same on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint(one_of("state", DELIVERY_STATES), name="state"),
        sa.Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = _account_fk()
    chat_id: Mapped[int | None] = mapped_column(ID, sa.ForeignKey("chats.id", ondelete="SET NULL"))
    reply_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("replies.id", ondelete="SET NULL")
    )
    key: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    url: Mapped[str] = mapped_column(sa.String(2048), nullable=False)
    payload: Mapped[dict[str, Any]] = _json()
    state: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="pending", server_default="pending"
    )
    attempts: Mapped[int] = mapped_column(
        sa.Integer(), nullable=False, default=0, server_default="0"
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    last_status: Mapped[int | None] = mapped_column(sa.Integer())
    created_at: Mapped[datetime] = _created()
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# What a twin knows (knowledge base, contact memory) has its own module; importing it here
# registers its tables on the metadata wherever the schema is.
from twin.db import tables_app as _app  # noqa: E402, F401
from twin.db import tables_cluster as _cluster  # noqa: E402, F401
from twin.db import tables_corrections as _corrections  # noqa: E402, F401
from twin.db import tables_drafts as _drafts  # noqa: E402, F401
from twin.db import tables_knowledge as _knowledge  # noqa: E402, F401
from twin.db import tables_safety as _safety  # noqa: E402, F401
