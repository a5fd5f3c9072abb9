"""initial schema: accounts, entities, chats, messages, replies, settings, style, events

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Self-contained on purpose (no imports from twin): a migration describes the schema as it was
when written. Column types here are the DDL equivalents of the models' types (UTCDateTime is
`DateTime(timezone=True)`; surrogate ids are BIGINT, INTEGER on SQLite for rowid aliasing).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = (
    "('received', 'scheduled', 'generating', 'sending', 'sent', 'skipped', 'failed', "
    "'cancelled')"
)


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.func.now() if now else None,
        nullable=nullable,
    )


def _json(name: str) -> sa.Column:
    return sa.Column(name, sa.JSON(), server_default=sa.text("'{}'"), nullable=False)


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("tg_user_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="new", nullable=False),
        sa.Column("session_data", sa.LargeBinary(), nullable=True),
        sa.Column("update_state", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        sa.CheckConstraint(
            "status IN ('new', 'code_sent', 'authorized', 'logged_out')",
            name=op.f("ck_accounts_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "account_settings",
        sa.Column("account_id", _id(), nullable=False),
        _json("data"),
        _ts("updated_at", nullable=False, now=True),
        _account_fk("account_settings"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_settings")),
    )
    op.create_table(
        "style_profiles",
        sa.Column("account_id", _id(), nullable=False),
        _json("data"),
        sa.Column("cursor", sa.JSON(), nullable=True),
        _ts("updated_at", nullable=False, now=True),
        _account_fk("style_profiles"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_style_profiles")),
    )
    op.create_table(
        "entities",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("access_hash", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        _ts("updated_at", nullable=False, now=True),
        _account_fk("entities"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entities")),
        sa.UniqueConstraint(
            "account_id", "entity_id", name=op.f("uq_entities_account_id_entity_id")
        ),
    )
    op.create_index("ix_entities_account_username", "entities", ["account_id", "username"])
    op.create_index("ix_entities_account_phone", "entities", ["account_id", "phone"])

    op.create_table(
        "chats",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("peer_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="private", nullable=False),
        sa.Column("title", sa.String(length=256), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("is_contact", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_bot", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("paused_until"),
        _json("overrides"),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("summary_upto_message_id", sa.BigInteger(), nullable=True),
        _ts("last_incoming_at"),
        _ts("last_outgoing_at"),
        _ts("last_owner_activity_at"),
        _ts("last_away_at"),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        _account_fk("chats"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
        sa.UniqueConstraint("account_id", "peer_id", name=op.f("uq_chats_account_id_peer_id")),
    )

    op.create_table(
        "replies",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("chat_id", _id(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="scheduled", nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        _json("decision"),
        _ts("reply_at", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until"),
        sa.Column("text", sa.Text(), nullable=True),
        _json("flags"),
        sa.Column("voice", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Double(), nullable=True),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        _ts("finished_at"),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_replies_state")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_replies_attempts")),
        _account_fk("replies"),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_replies_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replies")),
    )
    op.create_index("ix_replies_state_next_attempt_at", "replies", ["state", "next_attempt_at"])
    op.create_index("ix_replies_state_reply_at", "replies", ["state", "reply_at"])
    op.create_index("ix_replies_chat_id_state", "replies", ["chat_id", "state"])

    op.create_table(
        "messages",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("chat_id", _id(), nullable=False),
        sa.Column("tg_message_id", sa.BigInteger(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="text", nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("reply_to_tg_id", sa.BigInteger(), nullable=True),
        sa.Column("sender_id", sa.BigInteger(), nullable=True),
        _ts("date", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="received", nullable=False),
        sa.Column("state_reason", sa.String(length=64), nullable=True),
        sa.Column("reply_id", _id(), nullable=True),
        sa.Column("bubble_index", sa.Integer(), nullable=True),
        sa.Column("random_id", sa.BigInteger(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Double(), nullable=True),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        sa.CheckConstraint(
            "direction IN ('incoming', 'outgoing')", name=op.f("ck_messages_direction")
        ),
        sa.CheckConstraint(
            "kind IN ('text', 'voice', 'audio', 'video_note', 'other')",
            name=op.f("ck_messages_kind"),
        ),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_messages_state")),
        _account_fk("messages"),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_messages_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["replies.id"], name=op.f("fk_messages_reply_id_replies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "account_id", "chat_id", "tg_message_id",
            name=op.f("uq_messages_account_id_chat_id_tg_message_id"),
        ),
        sa.UniqueConstraint(
            "account_id", "random_id", name=op.f("uq_messages_account_id_random_id")
        ),
    )
    op.create_index("ix_messages_chat_id_date_id", "messages", ["chat_id", "date", "id"])
    op.create_index(op.f("ix_messages_reply_id"), "messages", ["reply_id"])

    op.create_table(
        "events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=True),
        sa.Column("chat_id", _id(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        _json("data"),
        _ts("created_at", nullable=False, now=True),
        _account_fk("events"),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_events_chat_id_chats"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_account_id_id", "events", ["account_id", "id"])
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"])


def downgrade() -> None:
    # Dropping a table drops its indexes; children first.
    for table in (
        "events",
        "messages",
        "replies",
        "chats",
        "entities",
        "style_profiles",
        "account_settings",
        "accounts",
    ):
        op.drop_table(table)
