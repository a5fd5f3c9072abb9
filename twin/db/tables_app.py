"""ORM models of the admin app's browser sessions (issue 19 §2): a session is known by the
SHA-256 of its cookie's secret, never the secret; a one-time login link by the SHA-256 of its
token. A session made from a stored API key goes with the key (`ON DELETE CASCADE`; a revoked
key's sessions are refused where they are read)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import ID, Base, UTCDateTime, utcnow


class AppSession(Base):
    __tablename__ = "app_sessions"
    __table_args__ = (sa.Index("ix_app_sessions_expires_at", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # who signed in: "token:<fingerprint>" (a configured token) or a stored key's name
    principal: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    key_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("api_keys.id", ondelete="CASCADE")
    )
    csrf: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)  # at the latest


class AppLoginLink(Base):
    __tablename__ = "app_login_links"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
