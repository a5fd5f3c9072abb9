"""owner_activity: the owner's last activity per account (messages from any device, read
receipts, online status), and the start of a chat's takeover (chats.takeover_started_at)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

"Only if offline" and the grace period read when the owner was last active; a takeover pause
is capped from its first owner message, and a pause with a start is a takeover (its contact
messages are answered when it ends), one without is the owner's own (API pause, escalation).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "owner_activity",
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("online_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_owner_activity_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_owner_activity")),
    )
    with op.batch_alter_table("chats") as batch:
        batch.add_column(
            sa.Column("takeover_started_at", sa.DateTime(timezone=True), nullable=True)
        )
    # What is known already: the owner's newest message from another device, per account.
    op.execute(
        "INSERT INTO owner_activity (account_id, active_at) "
        "SELECT account_id, MAX(last_owner_activity_at) FROM chats "
        "WHERE last_owner_activity_at IS NOT NULL GROUP BY account_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("takeover_started_at")
    op.drop_table("owner_activity")
