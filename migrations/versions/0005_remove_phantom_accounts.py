"""remove accounts that were never logged in and own nothing (created by API reads)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Before this release any API request naming an unknown account (`GET /stats?account=typo`)
created it, and every start connected each account to Telegram, creating a new authorization
key for it. Now only a login creates an account and only logged-in accounts are connected; this
removes the rows such requests left behind: never authorized (no Telegram user id, status not
`authorized`) and owning no row anywhere (chats, messages, replies, entities, settings, style
profile, events). Nothing is lost: such an account had no data and no authorized session. The
downgrade cannot bring them back, and need not.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNED = ("chats", "messages", "replies", "entities", "account_settings", "style_profiles", "events")


def upgrade() -> None:
    accounts = sa.table("accounts", sa.column("id"), sa.column("tg_user_id"), sa.column("status"))
    owns = sa.or_(
        *(
            sa.exists().where(sa.table(name, sa.column("account_id")).c.account_id == accounts.c.id)
            for name in OWNED
        )
    )
    op.execute(
        sa.delete(accounts).where(
            accounts.c.tg_user_id.is_(None), accounts.c.status != "authorized", ~owns
        )
    )


def downgrade() -> None:
    """Nothing to restore: the removed rows held no data."""
