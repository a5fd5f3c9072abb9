"""index replies by (state, finished_at, account_id): the rate limits' count of recent replies

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Every incoming message counts the account's replies of the last hour. Sent replies are found by
`finished_at`, which no index covered, so that look-up read every reply ever sent (1.5 ms per
message at 10,000 replies, growing without bound). With this index it reads only the last hour,
and counts it from the index alone (account_id included).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_replies_state_finished_at", "replies", ["state", "finished_at", "account_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_replies_state_finished_at", table_name="replies")
