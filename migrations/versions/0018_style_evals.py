"""style_evals: the results of `twin style eval` (score, figures, where the report is); a
correction kind more: `followed_up` (the owner wrote right after the twin's reply); and a
draft's note may come from a bot of the twin's (drafts.notice_route, notice_bot_id)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_KINDS = "'approved', 'edited', 'skipped', 'phone_edited', 'phone_deleted'"


def _kinds(batch: object, kinds: str) -> None:
    batch.drop_constraint(op.f("ck_corrections_kind"), type_="check")  # type: ignore[attr-defined]
    batch.create_check_constraint(op.f("ck_corrections_kind"), f"kind IN ({kinds})")  # type: ignore[attr-defined]


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        _kinds(batch, _KINDS + ", 'followed_up'")
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("notice_route", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("notice_bot_id", _id(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_drafts_notice_bot_id_accounts"), "accounts", ["notice_bot_id"], ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(
            "ix_drafts_notice_bot_id_notice_message_id", ["notice_bot_id", "notice_message_id"]
        )
    op.create_table(
        "style_evals",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("report_path", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_style_evals_account_id_accounts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_style_evals")),
    )
    op.create_index("ix_style_evals_account_id_id", "style_evals", ["account_id", "id"])


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_index("ix_drafts_notice_bot_id_notice_message_id")
        batch.drop_constraint(op.f("fk_drafts_notice_bot_id_accounts"), type_="foreignkey")
        batch.drop_column("notice_bot_id")
        batch.drop_column("notice_route")
    op.execute("DELETE FROM corrections WHERE kind = 'followed_up'")
    with op.batch_alter_table("corrections") as batch:
        _kinds(batch, _KINDS)
    op.drop_index("ix_style_evals_account_id_id", "style_evals")
    op.drop_table("style_evals")
