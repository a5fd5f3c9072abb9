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
