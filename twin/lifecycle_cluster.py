"""Several `twin run` processes on one PostgreSQL (twin.db.cluster), wired into the app by
twin.lifecycle: who serves which account, whose reply jobs run here, the event relay between
the processes, and this process's identity in /metrics."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from twin.services.events import RemoteEvents

if TYPE_CHECKING:
    from twin.background import Turn
    from twin.config import Settings
    from twin.ports import Adapters

log = logging.getLogger("twin.cluster")

FORWARD_KEY_INFO = b"twin/cluster/forwarded-requests/v1"
JOB_EVENTS = ("reply.scheduled", "reply.requeued")  # a reply job became due


def share_accounts(
    settings: Settings,
    adapters: Adapters,
    accounts: Any,
    worker: Any,
    repo: Any,
    clock: Any,
    events: Any,
) -> Turn | None:
    """On PostgreSQL, several processes may run: each Telegram account is served by one of
    them (twin.db.cluster), only its reply jobs run there, and every process hears every
    process's events. Returns whose turn the cluster's periodic passes are (None: alone)."""
    if adapters.database is not None or not settings.storage.url.startswith("postgresql"):
        return None  # SQLite: one daemon per file (`twin run` holds the file's lock)
    if not hasattr(accounts, "fence"):
        return None  # a test's own accounts
    from twin.db.cluster import PostgresOwnership

    ownership = PostgresOwnership(
        settings.storage.url,
        clock,
        heartbeat_seconds=settings.cluster.heartbeat_seconds,
        on_lost=accounts.fence,
    )
    ownership.url = advertised_url(settings)
    accounts.ownership = ownership
    worker.mine = accounts.mine

    async def alone() -> bool:
        seconds = settings.cluster.dead_after_seconds
        return await repo.other_live_processes(ownership.process_id, seconds) == 0

    worker.alone = alone

    def made_elsewhere(told: RemoteEvents) -> None:
        # a reply job another process made (a draft sent from there, a re-queue) for an
        # account served here: claimed now, not at the worker's next idle look
        if told.any_of(*JOB_EVENTS) and told.touches(ownership.owned()):
            worker.nudge()

    events.on_remote(made_elsewhere)
    repo.lease_owner = ownership.process_id  # replies.leased_by: whose lease it is
    relay_events(ownership, events, repo)
    return lambda: first_in_cluster(ownership, repo, settings.cluster.dead_after_seconds)


def advertised_url(settings: Settings) -> str:
    """Where the other processes reach this one's API: `[cluster] advertise_url`, else the
    address it listens on (for a wildcard one, this host's address as its name resolves)."""
    if settings.cluster.advertise_url:
        return settings.cluster.advertise_url.rstrip("/")
    host = settings.api.host
    if host in ("", "0.0.0.0", "::"):
        try:
            host = socket.gethostbyname(socket.gethostname())
        except OSError:
            host = socket.gethostname()
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.api.port}"


def forward_requests(app: Any, settings: Settings, ownership: Any, repo: Any) -> Any:
    """A request for an account another process serves is answered there
    (twin.api.forwarding); returns what closes the forwarding's HTTP client."""
    from twin.api.forwarding import FORWARDING, Forwarding, Serving
    from twin.db.crypto import derive_key, load_or_create_key

    secret, _ = load_or_create_key(settings)  # opened already by the database
    seconds = settings.cluster.dead_after_seconds

    async def serving(account: str) -> Serving | None:
        found = await repo.serving(account, ownership.process_id, seconds)
        return Serving(*found) if found is not None else None

    forwarding = app[FORWARDING] = Forwarding(
        derive_key(secret, FORWARD_KEY_INFO),
        ownership.process_id,
        serving,
        timeout=settings.cluster.forward_timeout_seconds,
    )
    log.info("cluster: this process's API is advertised at %s", ownership.url)
    return forwarding.close


class ClusterChores:
    """The cluster's chores, every `every` seconds in the longest-running live process — only
    while its own heartbeat is fresh:
    - the reply leases of processes silent for `silent` seconds (or no longer listed) go,
      never its own, and the worker is woken (a dead process's Telegram accounts' jobs are
      released by their next owner's claim; the other channels' jobs would otherwise wait for
      the lease to expire, 15 minutes). `silent` is well above the heartbeat's failure
      detection (`dead_after_seconds`) and its reconnect backoff, so a live process that lost
      its connection for a moment is not taken for dead while it may still be running a job;
    - the rows of processes silent for `forget` seconds (30 × `every` unless said) leave
      `GET /cluster`'s list;
    - the API's rate-limit windows whose hits all left their window a minute ago go (the
      minute covers the hosts' clocks being a little apart)."""

    RATE_SWEEP_SECONDS = 60.0

    def __init__(
        self,
        repo: Any,
        me: str,
        wake: Any,
        every: float,
        silent: float,
        *,
        forget: float | None = None,
    ) -> None:
        from twin.background import Periodic

        self._repo, self._me, self._wake = repo, me, wake
        self._every, self._silent = every, silent
        self._forget = 30 * every if forget is None else forget
        self._periodic = Periodic("cluster chores", self.run_once, every, log)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def run_once(self) -> int:
        """One round; how many reply leases it voided."""
        if await self._repo.first_live_process(self._every) != self._me:
            return 0  # another's turn, or this process's own heartbeat is late
        await self._repo.forget_dead_processes(self._forget)
        await self._repo.rate_sweep(time.time() - self.RATE_SWEEP_SECONDS)
        released = await self._repo.release_orphaned_leases(self._silent, keep=self._me)
        if released:
            log.warning("released %d reply job(s) leased by a process that is gone", released)
            self._wake()
        return released


async def first_in_cluster(ownership: Any, repo: Any, seconds: float) -> bool:
    """Whether the cluster-wide periodic passes (contact memory, retention) are this process's
    turn: it is the longest-running live process, or none is listed yet. Two processes may
    both believe it for a heartbeat while one starts or dies; those passes are idempotent (the
    memory's cursor moves by compare-and-set, a purge purges once), so that costs at most a
    repeated model call."""
    first = await repo.first_live_process(seconds)
    return first is None or first == ownership.process_id


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
    """Each process NOTIFYs the newest id, the types and the accounts of the events it
    announced; the others wake their event streams, which read them from the database, and
    tell the types and accounts to whoever acts on them (a draft's note, the reply worker).
    After a (re)join they are all woken for whatever was committed meanwhile (the
    notifications sent then were lost)."""
    from twin.services.events import parse_relayed, relay_payload

    me = ownership.process_id
    events.relay = lambda committed: ownership.notify(f"{me} {relay_payload(committed)}")

    def heard(payload: str) -> None:
        sender, _, rest = payload.partition(" ")
        if sender == me:
            return
        parsed = parse_relayed(rest)
        if parsed is not None:
            events.take_remote(*parsed)

    async def catch_up() -> None:
        with contextlib.suppress(Exception):  # the database out: the next event wakes them
            # anything may have been made meanwhile: whoever acts on it looks again
            events.take_remote([await repo.last_event_id()], RemoteEvents.unknown())

    def joined() -> None:
        ownership.spawn(catch_up())  # ends with the ownership, before the database closes

    ownership.on_notify(heard)
    ownership.on_joined(joined)
