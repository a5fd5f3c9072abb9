"""twin_styles: the style profile belongs to the twin, not the account

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

`twin style build` learns how the owner writes from an account's messages; the profile now
belongs to the twin that account answers as, so every account and channel answering as that
twin writes the same way. Each account's profile moves to its twin (no twin set: `default`,
created here when missing); when several accounts of one twin had one, the most recently
written is kept. Then style_profiles goes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "twin_styles",
        sa.Column("twin_id", _id(), nullable=False),
        sa.Column("data", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["twin_id"], ["twins.id"], name=op.f("fk_twin_styles_twin_id_twins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("twin_id", name=op.f("pk_twin_styles")),
    )
    bind = op.get_bind()
    profiles = bind.execute(
        sa.text(
            "SELECT p.data, p.cursor, p.updated_at, a.twin_id FROM style_profiles p "
            "JOIN accounts a ON a.id = p.account_id ORDER BY p.updated_at"
        )
    ).all()
    if profiles:
        default = bind.execute(sa.text("SELECT id FROM twins WHERE name = 'default'")).scalar()
        if default is None:
            bind.execute(
                sa.text(
                    "INSERT INTO twins (name, settings, voice, created_at, updated_at) "
                    "VALUES ('default', '{}', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            default = bind.execute(sa.text("SELECT id FROM twins WHERE name = 'default'")).scalar()
        latest = {}
        for data, cursor, updated_at, twin_id in profiles:  # oldest first: the newest wins
            latest[twin_id or default] = (data, cursor, updated_at)
        insert = sa.text(
            "INSERT INTO twin_styles (twin_id, data, cursor, updated_at) "
            "VALUES (:twin_id, :data, :cursor, :updated_at)"
        )
        for twin_id, (data, cursor, updated_at) in latest.items():
            # As read: JSON text on SQLite, decoded on PostgreSQL; dates likewise.
            bind.execute(
                insert,
                {
                    "twin_id": twin_id,
                    "data": _text(data),
                    "cursor": None if cursor is None else _text(cursor),
                    "updated_at": updated_at,
                },
            )
    op.drop_table("style_profiles")


def _text(value: object) -> str:
    """A JSON value as text (read through text() it is a string on SQLite already)."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


def downgrade() -> None:
    op.create_table(
        "style_profiles",
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("data", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_style_profiles_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_style_profiles")),
    )
    op.drop_table("twin_styles")
