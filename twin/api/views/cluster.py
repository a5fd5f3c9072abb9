"""`GET /cluster`: the `twin run` processes sharing the database and the accounts each serves
(twin.db.cluster). On SQLite there is one: this one."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable

routes = RouteTable(tags=("observability",))


class ProcessOut(ApiModel):
    id: str = Field(description="random, new at every start")
    host: str
    pid: int
    started_at: datetime | None
    heartbeat_at: datetime | None = Field(description="its last sign of life")
    alive: bool = Field(description="a heartbeat within [cluster] dead_after_seconds")
    accounts: list[str] = Field(description="the Telegram accounts and bots it serves")
    me: bool = Field(description="the process that answered this request")
    url: str | None = Field(
        None,
        description="where the others forward requests for its accounts ([cluster] advertise_url)",
    )


class ClusterOut(ApiModel):
    backend: Literal["sqlite", "postgresql"]
    processes: list[ProcessOut] = Field(description="the oldest start first")


@routes.get("/cluster", name="cluster", summary="The processes and the accounts each serves")
async def cluster(request: web.Request) -> ClusterOut:
    """Every process that shares this database, with its host, pid, start, last heartbeat,
    the accounts it serves and its API address (a request for one of its accounts received
    by another process is forwarded there); processes silent for longer than `[cluster]
    dead_after_seconds` are listed as not alive until they are forgotten (silent for 30 times
    that: the cluster's chore removes them)."""
    settings = request.app[keys.SETTINGS]
    accounts = request.app.get(keys.ACCOUNTS)
    ownership = accounts.ownership if accounts is not None else None
    now = request.app[keys.CLOCK].now()
    if ownership is None or not ownership.shared:
        served = sorted(a.name for a in accounts.known() if a.running) if accounts else []
        return ClusterOut(
            backend="sqlite" if settings.storage.url.startswith("sqlite") else "postgresql",
            processes=[
                ProcessOut(
                    id="sole",
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=None,
                    heartbeat_at=now,
                    alive=True,
                    accounts=served,
                    me=True,
                )
            ],
        )
    repo = request.app[keys.DATABASE].repo
    dead_after = timedelta(seconds=settings.cluster.dead_after_seconds)
    return ClusterOut(
        backend="postgresql",
        processes=[
            ProcessOut(
                id=row.id,
                host=row.host,
                pid=row.pid,
                started_at=row.started_at,
                heartbeat_at=row.heartbeat_at,
                alive=row.heartbeat_at >= now - dead_after,
                accounts=row.accounts,
                me=row.id == ownership.process_id,
                url=row.url,
            )
            for row in await repo.cluster_processes()
        ],
    )
