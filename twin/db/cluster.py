"""Which process serves which Telegram account (issue 20): one MTProto session is never used
from two processes.

On PostgreSQL every `twin run` holds, on a connection of its own, a session-level advisory lock
per account it serves (`pg_try_advisory_lock(CLASS, account id)`). Chosen over a lease row with
heartbeats and fencing tokens because PostgreSQL itself ends the claim with the claimant: a
process that stops, is killed or loses its connection loses its locks the moment its backend
goes (TCP keepalives, set short on that connection, bound a silent network's case), with no
expiry to wait for and no clock to trust; a lease table would need both, and a fencing check in
every write. The cost — no fencing token — is covered on the other side: the process checks that
connection every `heartbeat_seconds`, and when it fails it stops every account it serves at
once (`on_lost`), before PostgreSQL could give the lock to another process; a send cut in half
is made safe by the random_id persisted before it (Telegram refuses a repeated one).

The same connection keeps the process's row in `cluster_processes` (GET /cluster), and carries
the event relay: every process NOTIFYs the ids of the events it committed, and LISTENs for the
others' to wake its event streams (GET /events on any process streams every process's events).

On SQLite there is one daemon per database file: `twin run` holds an exclusive lock on
`<database>.lock` (released by the kernel whatever way the process ends), and a second one
refuses to start. CLI commands (`twin login`, `twin style build` …) do not take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from twin.background import cancel
from twin.clock import Clock
from twin.errors import StartupError

log = logging.getLogger("twin.cluster")

LOCK_CLASS = 0x7477  # "tw": the advisory locks' first key; the second is the account's id
NOTIFY_CHANNEL = "twin_events"  # "<process id> <event id>,<event id>…"
_CONNECT_TIMEOUT = 5.0


class SoleOwnership:
    """One process serves every account (SQLite, or a test without PostgreSQL)."""

    process_id = "sole"
    shared = False  # no other process: every job here, every lease void at start

    def __init__(self) -> None:
        self._owned: set[int] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._owned.clear()

    async def claim(self, account_id: int) -> bool:
        self._owned.add(account_id)
        return True

    def owns(self, account_id: int) -> bool:
        return account_id in self._owned

    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    async def release(self, account_id: int) -> None:
        self._owned.discard(account_id)

    def serving(self, names: list[str]) -> None:
        return None


class PostgresOwnership:
    """Advisory locks on a dedicated asyncpg connection, with the process's heartbeat row."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        heartbeat_seconds: float,
        on_lost: Callable[[], Awaitable[None]],
    ) -> None:
        # The connect arguments SQLAlchemy's asyncpg dialect derives from the URL (ssl,
        # prepared statement cache …), so this connection is made as the engine's are.
        from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

        _args, self._connect_args = asyncpg_dialect().create_connect_args(make_url(url))
        self._clock = clock
        self._heartbeat = heartbeat_seconds
        self._on_lost = on_lost
        self.shared = True  # other processes may serve accounts of this database
        self.process_id = secrets.token_hex(16)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at: datetime = clock.now()
        # where the other processes reach this one's API (twin.api.forwarding); set before start
        self.url: str | None = None
        self._connection: Any = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._owned: set[int] = set()
        self._names: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._heard: list[Callable[[str], None]] = []  # NOTIFY listeners (the event relay)
        self._fencing = False
        self._joined: list[Callable[[], None]] = []
        self._sends: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self._connect()
        except Exception as exc:  # the heartbeat joins as soon as it can; nothing is served
            log.error("cluster: cannot join yet (%s)", exc)
        self._task = asyncio.create_task(self._beat(), name="cluster heartbeat")

    async def stop(self) -> None:
        """Release everything: the row goes, and closing the connection frees every lock."""
        task, self._task = self._task, None
        await cancel(task)
        await self._finish_sends()
        connection, self._connection = self._connection, None
        self._owned.clear()
        self.connected.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    await connection.execute(
                        "DELETE FROM cluster_processes WHERE id = $1", self.process_id
                    )
            try:
                await asyncio.wait_for(connection.close(), _CONNECT_TIMEOUT)
            except Exception:  # not closed in time: never leave it open
                connection.terminate()
            except asyncio.CancelledError:
                connection.terminate()
                raise

    async def _finish_sends(self) -> None:
        """Let the notifications and catch-ups under way end (one short query each) before the
        database goes; cancel what is still running after a while, and never wait on a task
        that ignores its cancellation (a query cancelled mid-flight can leave SQLAlchemy's
        asyncpg adapter waiting: MagicStack/asyncpg#873)."""
        pending = set(self._sends)
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=_CONNECT_TIMEOUT)
        for task in late:
            task.cancel()
        if late:
            _done, stuck = await asyncio.wait(late, timeout=_CONNECT_TIMEOUT)
            if stuck:
                log.warning("cluster: %d task(s) did not end when stopped", len(stuck))

    async def _connect(self) -> None:
        import asyncpg

        params = dict(self._connect_args)
        # Short keepalives: when this host goes silent PostgreSQL ends the session (and frees
        # its locks) within about 11 s instead of the kernel's two hours.
        params["server_settings"] = {
            **params.get("server_settings", {}),
            "application_name": f"twin cluster {self.host}:{self.pid}",
            "tcp_keepalives_idle": "5",
            "tcp_keepalives_interval": "2",
            "tcp_keepalives_count": "3",
        }
        for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            params.pop(sqlalchemy_only, None)
        params.setdefault("timeout", _CONNECT_TIMEOUT)
        connection = await asyncpg.connect(**params)
        try:
            await connection.execute(
                "INSERT INTO cluster_processes "
                "(id, host, pid, started_at, heartbeat_at, accounts, url) "
                "VALUES ($1, $2, $3, $4, now(), '[]', $5) "
                "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
                self.process_id,
                self.host[:255],
                self.pid,
                self.started_at,
                self.url,
            )
            await connection.add_listener(NOTIFY_CHANNEL, self._notified)
            # The server ending this session (a restart, pg_terminate_backend) frees the locks
            # at once: stop serving at once too, not at the next heartbeat.
            connection.add_termination_listener(self._terminated)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        self.connected.set()
        log.info("cluster: process %s (%s pid %d) joined", self.process_id, self.host, self.pid)
        for joined in self._joined:
            try:
                joined()
            except Exception:
                log.exception("cluster: a join listener failed")

    def on_joined(self, listener: Callable[[], None]) -> None:
        """Call `listener()` every time the connection is (again) set up: notifications sent
        while it was down were lost."""
        self._joined.append(listener)

    def _terminated(self, connection: Any) -> None:
        if self._fencing:
            return  # being handled already
        if connection is self._connection and self._task is not None and not self._task.done():
            self._task.cancel()  # the beat loop is replaced by the fence and rejoin
            self._task = asyncio.get_running_loop().create_task(
                self._fence_then_beat(ConnectionError("the server ended the session"))
            )

    async def _fence_then_beat(self, exc: Exception) -> None:
        await self._lost(exc)
        await self._beat()

    # -- notifications (what other processes announce: their events) -----------------------
    def on_notify(self, listener: Callable[[str], None]) -> None:
        """Call `listener(payload)` for every notification on the channel (any process's)."""
        self._heard.append(listener)

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        for listener in self._heard:
            try:
                listener(payload)
            except Exception:
                log.exception("cluster: a notification listener failed")

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task that ends with the ownership (`stop()` lets it end, or cancels
        it, before the database is disposed: a query still running then would leak its
        connection)."""
        task = asyncio.get_running_loop().create_task(work)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def notify(self, payload: str) -> None:
        """Announce `payload` to every process (this one too), soon; lost if the connection
        is down (the listeners read the events from the database anyway)."""
        self.spawn(self._notify(payload))

    async def _notify(self, payload: str) -> None:
        if not self.connected.is_set():
            return  # lost while disconnected: the streams still read the events later
        try:
            async with asyncio.timeout(1.0), self._lock:  # the timeout covers the wait too
                if self._connection is None:
                    return
                await self._connection.execute(
                    "SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload[:7900]
                )
        except Exception as exc:
            log.debug("cluster: a notification was not sent: %s", exc)

    # -- ownership -------------------------------------------------------------------------
    async def claim(self, account_id: int) -> bool:
        """Serve `account_id` if no other process does (True also when this one already does)."""
        if account_id in self._owned:
            return True
        async with self._lock:
            if account_id in self._owned:
                return True  # won meanwhile (advisory locks are reentrant: never ask twice)
            if self._connection is None or not self.connected.is_set():
                return False
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    won = await self._connection.fetchval(
                        "SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, account_id
                    )
            except Exception as exc:  # the heartbeat notices the connection is gone
                log.warning("cluster: cannot claim account %d: %s", account_id, exc)
                return False
        if won:
            self._owned.add(account_id)
        return bool(won)

    def owns(self, account_id: int) -> bool:
        return account_id in self._owned

    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    async def release(self, account_id: int) -> None:
        if account_id not in self._owned:
            return
        self._owned.discard(account_id)
        async with self._lock:
            if self._connection is None:
                return
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    await self._connection.execute(
                        "SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, account_id
                    )

    def serving(self, names: list[str]) -> None:
        """The names of the accounts it serves, written with the next heartbeat."""
        self._names = sorted(names)

    # -- heartbeat -------------------------------------------------------------------------
    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                async with asyncio.timeout(self._heartbeat + 1), self._lock:  # waiting included
                    if self._connection is None:
                        raise ConnectionError("no connection")
                    await self._connection.execute(
                        "INSERT INTO cluster_processes "
                        "(id, host, pid, started_at, heartbeat_at, accounts, url) "
                        "VALUES ($1, $2, $3, $4, now(), $5, $6) ON CONFLICT (id) DO UPDATE "
                        "SET heartbeat_at = now(), accounts = $5",
                        self.process_id,
                        self.host[:255],
                        self.pid,
                        self.started_at,
                        json.dumps(self._names),
                        self.url,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._lost(exc)

    async def _lost(self, exc: Exception) -> None:
        """The connection is gone, and the locks with it (or soon): stop serving first, then
        join again."""
        log.error(
            "cluster: the connection holding this process's accounts failed (%s): stopping "
            "them before another process takes them over",
            exc,
        )
        self._fencing = True
        self.connected.clear()
        try:  # stop serving first: only then may the locks go to another process
            await self._on_lost()
        except Exception:
            log.exception("cluster: stopping the accounts failed")
        self._owned.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()
        self._fencing = False
        delay = 1.0
        while self._connection is None:
            try:
                await self._connect()
            except Exception as again:
                log.warning("cluster: cannot reconnect (%s); retrying in %.0f s", again, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def daemon_lock(url: str) -> DaemonFileLock | None:
    """The lock a `twin run` takes on its SQLite file; None on PostgreSQL (or in memory)."""
    from twin.db.files import sqlite_path

    path = sqlite_path(url)
    return DaemonFileLock(path.resolve()) if path is not None else None


class DaemonFileLock:
    """One `twin run` per SQLite database file: an exclusive lock on `<database>.lock`."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StartupError(
                f"another `twin run` ({holder}) already serves the SQLite database "
                f"{self.path.with_suffix('')}: one daemon per SQLite file. To run several "
                "processes, use PostgreSQL ([storage] url)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
