"""The processes sharing one PostgreSQL (issue 20): each `twin run` keeps a row with its
heartbeat and the accounts it serves, for `GET /cluster`. Who serves an account is decided by
PostgreSQL advisory locks, not by this table (twin.db.cluster)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import Base, UTCDateTime


class ClusterProcess(Base):
    __tablename__ = "cluster_processes"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # random, per start
    host: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    pid: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    accounts: Mapped[list[Any]] = mapped_column(
        sa.JSON(), nullable=False, default=list, server_default=sa.text("'[]'")
    )
    # where the other processes reach its API (requests for the accounts it serves)
    url: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)


class RateWindow(Base):
    """The API's rate-limit windows when several processes share the database: one row per
    limit and key (a token's fingerprint, a login's account or address, a business API user…,
    hashed), the times of its hits still in the window (twin.domain.throttle.window_hit)."""

    __tablename__ = "rate_windows"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # which limit
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256 of the key
    hits: Mapped[list[Any]] = mapped_column(
        sa.JSON(), nullable=False, default=list, server_default=sa.text("'[]'")
    )
    # Unix time when the last hit leaves the window: the row can go from then on.
    expires_at: Mapped[float] = mapped_column(sa.Float(), nullable=False, index=True)
