"""cluster_processes.url: where the other processes reach a process's API

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cluster_processes") as batch:
        batch.add_column(sa.Column("url", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cluster_processes") as batch:
        batch.drop_column("url")
