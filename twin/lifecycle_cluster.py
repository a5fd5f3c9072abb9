"""Several `twin run` processes on one PostgreSQL (twin.db.cluster), wired into the app by
twin.lifecycle: who serves which account, whose reply jobs run here, the event relay between
the processes, and this process's identity in /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.config import Settings
    from twin.ports import Adapters


def share_accounts(
    settings: Settings,
    adapters: Adapters,
    accounts: Any,
    worker: Any,
    repo: Any,
    clock: Any,
    events: Any,
) -> None:
    """On PostgreSQL, several processes may run: each Telegram account is served by one of
    them (twin.db.cluster), only its reply jobs run there, and every process hears every
    process's events."""
    if adapters.database is not None or not settings.storage.url.startswith("postgresql"):
        return  # SQLite: one daemon per file (`twin run` holds the file's lock)
    if not hasattr(accounts, "fence"):
        return  # a test's own accounts
    from twin.db.cluster import PostgresOwnership

    ownership = PostgresOwnership(
        settings.storage.url,
        clock,
        heartbeat_seconds=settings.cluster.heartbeat_seconds,
        on_lost=accounts.fence,
    )
    accounts.ownership = ownership
    worker.mine = accounts.mine

    async def alone() -> bool:
        seconds = settings.cluster.dead_after_seconds
        return await repo.other_live_processes(ownership.process_id, seconds) == 0

    worker.alone = alone
    relay_events(ownership, events, repo)


def process_metrics(registry: Any, accounts: Any) -> None:
    """Which process this is (several may share a database) and how many accounts it serves."""
    import os
    import socket

    from prometheus_client import Gauge

    ownership = getattr(accounts, "ownership", None)
    if ownership is None:
        return
    info = Gauge(
        "twin_process_info",
        "This process (1): its id in GET /cluster ('sole' when it is the only one), host, pid.",
        ("process", "host", "pid"),
        registry=registry,
    )
    info.labels(ownership.process_id, socket.gethostname(), str(os.getpid())).set(1)
    served = Gauge(
        "twin_accounts_served",
        "Telegram accounts and bots this process serves now.",
        registry=registry,
    )
    served.set_function(lambda: len(ownership.owned()))


def relay_events(ownership: Any, events: Any, repo: Any) -> None:
    """Each process NOTIFYs the ids of the events it announced; the others wake their event
    streams, which read them from the database. After a (re)join the streams are woken for
    whatever was committed meanwhile (the notifications sent then were lost)."""
    me = ownership.process_id
    events.relay = lambda ids: ownership.notify(f"{me} {','.join(map(str, ids))}")

    def heard(payload: str) -> None:
        sender, _, listed = payload.partition(" ")
        if sender == me or not listed:
            return
        try:
            events.take_remote([int(part) for part in listed.split(",")])
        except ValueError:
            return

    catching_up: set[asyncio.Task[None]] = set()

    async def catch_up() -> None:
        with contextlib.suppress(Exception):  # the database out: the next event wakes them
            events.take_remote([await repo.last_event_id()])

    def joined() -> None:
        task = asyncio.get_running_loop().create_task(catch_up())
        catching_up.add(task)
        task.add_done_callback(catching_up.discard)

    ownership.on_notify(heard)
    ownership.on_joined(joined)
