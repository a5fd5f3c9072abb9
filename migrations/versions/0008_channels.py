"""accounts.channel and chats.external_id: conversations of every channel in one model

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-05

An account row is a channel instance (a Telegram account, or the HTTP chat API, …) and a chat
row is one conversation of it. `accounts.channel` says which channel an instance serves;
existing rows are Telegram accounts. `chats.external_id` is the conversation's own id on its
channel (the HTTP chat API's thread id, a TalkMe caller); Telegram chats keep NULL and are
addressed by their peer id as before. `chats.channel_data` is what a channel keeps about a
conversation (TalkMe: its session, the caller's phone, an answer held past the deadline).
Nothing is rewritten: three columns are added, with defaults that describe the rows already
there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column(
                "channel", sa.String(length=16), nullable=False, server_default="telegram"
            )
        )
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("channel_data", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("channel_data")
        batch.drop_column("external_id")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("channel")
