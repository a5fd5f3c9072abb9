"""replies (chat_id, id): a conversation's newest reply job (the admin app's "escalated")

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_replies_chat_id_id", "replies", ["chat_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_replies_chat_id_id", table_name="replies")
