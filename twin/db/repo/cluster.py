"""The processes sharing the database, as their heartbeat rows tell (GET /cluster; whether a
starting worker is alone). Written by twin.db.cluster on its own connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.repo._base import RepoBase
from twin.db.tables_cluster import ClusterProcess

P = ClusterProcess.__table__


def beat_since(seconds: float) -> Any:
    """The database's now() less `seconds`: a heartbeat stamped since then is recent (by the
    clock that stamped it; the hosts' clocks may differ). PostgreSQL only."""
    return sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


@dataclass(frozen=True, slots=True)
class ProcessRow:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    accounts: list[str]
    url: str | None = None


class ClusterMixin(RepoBase):
    async def cluster_processes(self) -> list[ProcessRow]:
        """Every process row, the oldest start first."""
        query = sa.select(P).order_by(P.c.started_at, P.c.id)

        def work(c: Connection) -> list[ProcessRow]:
            return [
                ProcessRow(
                    row.id,
                    row.host,
                    row.pid,
                    row.started_at,
                    row.heartbeat_at,
                    [str(name) for name in (row.accounts or [])],
                    row.url,
                )
                for row in c.execute(query)
            ]

        return await self._read(work)

    async def other_live_processes(self, me: str, seconds: float) -> int:
        """How many other processes beat in the last `seconds`, by the database's clock (the
        one that stamped the heartbeats: the hosts' clocks may differ). PostgreSQL only."""
        recent = beat_since(seconds)
        query = (
            sa.select(sa.func.count())
            .select_from(P)
            .where(P.c.id != me, P.c.heartbeat_at >= recent)
        )
        return await self._read(lambda c: int(c.execute(query).scalar_one()))

    async def first_live_process(self, seconds: float) -> str | None:
        """The longest-running process that beat in the last `seconds` (by the database's
        clock): the one whose turn the cluster's periodic passes are. PostgreSQL only."""
        recent = beat_since(seconds)
        query = (
            sa.select(P.c.id)
            .where(P.c.heartbeat_at >= recent)
            .order_by(P.c.started_at, P.c.id)
            .limit(1)
        )
        return await self._read(lambda c: c.execute(query).scalar())

    async def serving(self, account: str, me: str, seconds: float) -> tuple[str, str | None] | None:
        """The other live process (a heartbeat in the last `seconds`) that lists `account` as
        served: its id and API address (None when it gave none: an older version); None when
        no other live process lists it. PostgreSQL only."""
        recent = beat_since(seconds)
        query = (
            sa.select(P.c.id, P.c.url, P.c.accounts)
            .where(P.c.id != me, P.c.heartbeat_at >= recent)
            .order_by(P.c.heartbeat_at.desc())
        )

        def work(c: Connection) -> tuple[str, str | None] | None:
            for process, url, accounts in c.execute(query):
                if account in (accounts or []):
                    return str(process), (str(url) if url else None)
            return None

        return await self._read(work)

    async def forget_dead_processes(self, seconds: float) -> int:
        """Drop the rows of processes silent for `seconds` by the database's clock (long gone:
        `GET /cluster` lists the dead ones until then)."""
        statement = sa.delete(P).where(P.c.heartbeat_at < beat_since(seconds))
        return await self._run(lambda c: c.execute(statement).rowcount or 0)
