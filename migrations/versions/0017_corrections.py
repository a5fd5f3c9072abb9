"""corrections: what the owner made of the twin's drafts (sent unchanged, edited, skipped)
and of its sent replies (edited or deleted from the phone)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Each decision on a draft is recorded with its context (what the contact wrote), the twin's text
and the owner's; the most similar corrections become the prompt's first examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("chat_id", _id(), nullable=False),
        sa.Column("draft_id", _id()),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("twin_text", sa.Text(), nullable=False),
        sa.Column("owner_text", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('approved', 'edited', 'skipped', 'phone_edited', 'phone_deleted')",
            name=op.f("ck_corrections_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_corrections_account_id_accounts"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"],
            name=op.f("fk_corrections_chat_id_chats"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["draft_id"], ["drafts.id"],
            name=op.f("fk_corrections_draft_id_drafts"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    op.create_index("ix_corrections_account_id_id", "corrections", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_corrections_account_id_id", "corrections")
    op.drop_table("corrections")
