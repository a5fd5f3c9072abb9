"""rate_windows: the API's rate-limit windows shared by the processes of one database

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("hits", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name=op.f("pk_rate_windows")),
    )
    op.create_index(op.f("ix_rate_windows_expires_at"), "rate_windows", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_windows_expires_at"), table_name="rate_windows")
    op.drop_table("rate_windows")
