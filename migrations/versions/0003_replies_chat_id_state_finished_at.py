"""index replies by (chat_id, state, finished_at): the per-chat rate limit's count

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Every incoming message also counts the chat's replies of the last hour. Through (chat_id, state)
that count read every reply the chat was ever sent, row by row, to compare its `finished_at`;
with `finished_at` in the index it reads only the last hour's entries. The new index serves
every query the old one did (it starts with the same columns), so it replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_replies_chat_id_state_finished_at", "replies", ["chat_id", "state", "finished_at"]
    )
    op.drop_index("ix_replies_chat_id_state", table_name="replies")


def downgrade() -> None:
    op.create_index("ix_replies_chat_id_state", "replies", ["chat_id", "state"])
    op.drop_index("ix_replies_chat_id_state_finished_at", table_name="replies")
