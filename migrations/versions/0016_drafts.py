"""drafts: replies the twin wrote for the owner to send, edit or skip (copilot mode)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

In draft mode a reply is generated as usual and kept (its job ends skipped, reason `drafted`);
the draft waits for the owner's decision until it expires, is replaced by a newer one for the
chat, or is cancelled by the owner writing there. Sending it creates the job that delivers it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("chat_id", _id(), nullable=False),
        sa.Column("reply_id", _id(), nullable=False),
        sa.Column("sent_reply_id", _id()),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("final_text", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("notice_random_id", sa.BigInteger()),
        sa.Column("notice_message_id", sa.BigInteger()),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'skipped', 'expired', 'superseded', 'cancelled')",
            name=op.f("ck_drafts_state"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_drafts_account_id_accounts"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_drafts_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["replies.id"],
            name=op.f("fk_drafts_reply_id_replies"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sent_reply_id"], ["replies.id"],
            name=op.f("fk_drafts_sent_reply_id_replies"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint("reply_id", name=op.f("uq_drafts_reply_id")),
    )
    op.create_index("ix_drafts_state_expires_at", "drafts", ["state", "expires_at"])
    op.create_index("ix_drafts_chat_id_state", "drafts", ["chat_id", "state"])
    op.create_index("ix_drafts_account_id_created_at", "drafts", ["account_id", "created_at"])
    op.create_index(
        "ix_drafts_account_id_notice_message_id", "drafts", ["account_id", "notice_message_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_drafts_account_id_notice_message_id", "drafts")
    op.drop_index("ix_drafts_account_id_created_at", "drafts")
    op.drop_index("ix_drafts_chat_id_state", "drafts")
    op.drop_index("ix_drafts_state_expires_at", "drafts")
    op.drop_table("drafts")
