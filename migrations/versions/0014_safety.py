"""safety: the account's mode (active, draft, off) with who set it and why, and the safety
governor's ledger of rare events (flood waits, spam limits, first contacts, mode changes)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_safety",
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("set_by", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notify_random_id", sa.BigInteger()),
        sa.Column("notified", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "mode IN ('active', 'draft', 'off')", name=op.f("ck_account_safety_mode")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_account_safety_account_id_accounts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_safety")),
    )
    op.create_table(
        "safety_events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16)),
        sa.Column("seconds", sa.Float()),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('flood_wait', 'spam_limit', 'first_contact', 'mode')",
            name=op.f("ck_safety_events_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_safety_events_account_id_accounts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_events")),
    )
    op.create_index("ix_safety_events_account_at", "safety_events", ["account_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_safety_events_account_at", "safety_events")
    op.drop_table("safety_events")
    op.drop_table("account_safety")
