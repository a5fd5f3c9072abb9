"""twins: digital twins as resources; accounts.twin_id

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

A twin is a name, its overrides of the behaviour sections over config.toml ([twin] persona and
reply policy, [schedule], [humanize]) and its voice. Every account and channel instance answers
as one twin: `accounts.twin_id`, NULL meaning the twin named `default` (config.toml's [twin]
section plus what is stored for it). Existing accounts keep NULL: they answer exactly as
before. The `default` twin itself is created by the daemon when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "twins",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("settings", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("voice", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twins")),
        sa.UniqueConstraint("name", name=op.f("uq_twins_name")),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("twin_id", _id(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_accounts_twin_id_twins"), "twins", ["twin_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("fk_accounts_twin_id_twins"), type_="foreignkey")
        batch.drop_column("twin_id")
    op.drop_table("twins")
