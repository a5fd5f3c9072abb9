"""replies.failure: why a failed reply failed (outage | permanent | expired)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

A reply that ran out of `max_attempts` on an outage (5xx, 429, timeouts, connection errors) is
re-queued once the dependency works again; one refused for good (an invalid request, content
refused) is not. The column tells them apart; `expired` marks an outage failure found too old
to re-queue (older than telegram.max_catch_up_age), so the recovery scan never reads it again.
Existing failed replies keep NULL: their cause is unknown, so only a manual retry re-queues
them. The index finds the (few) outage failures without reading the table.

On SQLite the CHECK constraint makes batch mode rebuild `replies` (one copy of the table).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("failure", sa.String(length=16), nullable=True))
        batch.create_check_constraint(
            op.f("ck_replies_failure"), "failure IN ('outage', 'permanent', 'expired')"
        )
        batch.create_index("ix_replies_failure", ["failure"])


def downgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.drop_index("ix_replies_failure")
        batch.drop_constraint(op.f("ck_replies_failure"), type_="check")
        batch.drop_column("failure")
