"""Engine factory, health ping, the repository's unit-of-work runners and the
`database(settings)` resource used by the lifecycle."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from twin.clock import Clock
from twin.db.base import SQLITE_FOLD, sqlite_casefold
from twin.db.crypto import SessionCipher, load_or_create_key
from twin.db.lean import LeanConnection
from twin.db.repo import Repository
from twin.errors import ConfigError, StorageUnavailable

if TYPE_CHECKING:
    from twin.config import Settings

log = logging.getLogger("twin.db")

SQLITE_BUSY_TIMEOUT_MS = 10_000
PING_TIMEOUT = 5.0

T = TypeVar("T")
Work = Callable[[Connection], T]


def create_engine(
    url: str | URL, *, echo: bool = False, sqlite_foreign_keys: bool = True, **kwargs: Any
) -> AsyncEngine:
    """An AsyncEngine for `sqlite+aiosqlite://` or `postgresql+asyncpg://` URLs.

    SQLite connections get WAL, foreign keys (unless `sqlite_foreign_keys=False`, which the
    migrations use so that batch table rebuilds cannot cascade), a busy timeout and
    synchronous=NORMAL; a missing database file is created readable by its owner only (see
    `_create_sqlite_file`).
    """
    url = make_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        _create_sqlite_file(url)
        engine = create_async_engine(url, echo=echo, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_foreign_keys))
        return engine
    if backend == "postgresql":
        options: dict[str, Any] = {
            "pool_size": 5,
            "max_overflow": 10,
            "pool_timeout": 30,
            "pool_recycle": 1800,
            "pool_pre_ping": True,
        }
        if kwargs.get("poolclass") is not None:
            options = {}
        return create_async_engine(url, echo=echo, **{**options, **kwargs})
    raise ConfigError([f"storage.url: unsupported database backend '{backend}'"])


def _create_sqlite_file(url: URL) -> None:
    """Create a missing database file 0600 (in a new directory 0700), whatever the umask.

    SQLite itself would create it 0644 less the umask, readable by every local user, and it
    gives the -wal and -shm files the database file's mode. An existing file is left as it is
    (`warn_if_exposed` tells the owner at start-up)."""
    if not is_sqlite_file(url):
        return
    path = Path(str(url.database)).expanduser()
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # an empty file is an empty SQLite database
    finally:
        os.close(fd)


def warn_if_exposed(url: str | URL) -> None:
    """Log a warning when the SQLite database file is accessible to other local users."""
    if not is_sqlite_file(url):
        return
    path = Path(str(make_url(url).database)).expanduser()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "database file %s is accessible to other users (mode %o): it holds your chats and "
            "Telegram sessions; run chmod 600 %s*",
            path,
            mode,
            path,
        )


def _sqlite_pragmas(
    foreign_keys: bool, *, wait: bool = True, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
):
    """The connection's pragmas. `wait=False` (the event loop's own connection): no busy
    timeout and no automatic checkpoints, so it never sleeps or fsyncs (see SQLiteRunner)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function(SQLITE_FOLD, 1, sqlite_casefold, deterministic=True)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms if wait else 0}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if not wait:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
        finally:
            cursor.close()

    return on_connect


# --- units of work -------------------------------------------------------------------------------


class Runner(Protocol):
    """Runs `work(connection)` in one transaction: committed when it returns, rolled back when
    it raises. Every repository method is one unit of work.

    `write`: the unit may write. On SQLite a writing unit takes the write lock when it begins
    (BEGIN IMMEDIATE), so what it reads cannot change before it commits; a reading unit
    (`write=False`) begins DEFERRED and must not write. `run_inline` is for the short units
    of the reply pipeline's hot path: a runner may run them on the event loop's own thread
    when that is cheaper than handing them to another."""

    async def run(self, work: Work[T], *, write: bool = True) -> T: ...

    async def run_inline(self, work: Work[T], *, write: bool = True) -> T: ...

    async def aclose(self) -> None: ...


# asyncpg's errors that mean "the server or the connection to it", not "the statement".
_POSTGRES_OUTAGES = frozenset(
    {
        "AdminShutdownError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ConnectionRejectionError",
        "CrashShutdownError",
        "InterfaceError",
        "TooManyConnectionsError",
    }
)
# SQLite: busy/locked past the busy timeout, a read-only file, I/O errors, a full disk, a file
# that cannot be opened.
_SQLITE_OUTAGES = frozenset({5, 6, 8, 10, 13, 14})  # BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN
# PostgreSQL SQLSTATEs of the server's state rather than the statement's: connection exceptions
# (08), insufficient resources such as a full disk (53), operator intervention such as a shutdown
# (57P), and a read-only transaction during a failover (25006).
_POSTGRES_SQLSTATE_OUTAGES = ("08", "53", "57P", "25006")


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached or used right now (a retry of
    the same unit of work may succeed), rather than that the work itself is wrong."""
    if isinstance(exc, OSError | TimeoutError | sa.exc.TimeoutError):
        return True  # connection refused/reset, connect or pool timeouts
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return True
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_OUTAGES
    cause = getattr(orig, "__cause__", None)
    sqlstate = getattr(cause, "sqlstate", None) or getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_POSTGRES_SQLSTATE_OUTAGES):
        return True
    names = {cls.__name__ for cls in type(cause).__mro__} if cause is not None else set()
    return bool(names & _POSTGRES_OUTAGES)


def _unavailable(exc: BaseException) -> StorageUnavailable:
    log.debug("database unavailable: %s: %s", type(exc).__name__, exc)
    return StorageUnavailable(f"the database is unavailable ({type(exc).__name__})")


class AsyncRunner:
    """Units of work on an AsyncEngine (PostgreSQL/asyncpg, in-memory SQLite): the synchronous
    `work` runs through SQLAlchemy's greenlet bridge, each statement awaiting the driver."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: Work[T], *, write: bool = True) -> T:
        try:
            async with self._engine.begin() as connection:
                return await connection.run_sync(work)
        except Exception as exc:
            if is_outage(exc):
                raise _unavailable(exc) from exc
            raise

    run_inline = run

    async def aclose(self) -> None:
        """The engine belongs to the caller, who disposes it."""


class SQLiteRunner:
    """Units of work on a file SQLite database, with the synchronous sqlite3 driver.

    Why not aiosqlite: through it every statement costs several thread hops (cursor, execute,
    fetch, close, commit, the pool's reset), ~0.5 ms of CPU for a one-row query, and the event
    loop spent most of its time handing work to threads. Here a whole transaction is one call.

    Transactions mean what they say: both connections are in sqlite3's autocommit mode
    (`isolation_level=None`) and every unit opens its own transaction explicitly, `BEGIN
    IMMEDIATE` when it writes (the write lock is taken before `work` reads anything, so a
    read-then-write unit is atomic against every other connection and process), `BEGIN` when
    it only reads (`write=False`: WAL readers never wait). The driver's legacy mode, which
    began a transaction only before the first write, is not used.

    * `run()`: in one dedicated thread with its own connection. For everything but the hot
      path (API queries, statistics, session saves, recovery, purges), which may take long,
      read cold pages or wait for a lock.
    * `run_inline()`: on the event loop's thread, with a second connection. The pipeline's
      units are short (a few indexed statements, ~0.1-0.5 ms), and a hop to a thread and back
      costs more than that: about 0.6 ms of latency each with the GIL contended, four of them
      before a reply is sent. This connection never blocks the loop:

      - inline and thread units never overlap: while the thread has work (queued or running;
        it may hold the write lock), an inline unit waits for it asynchronously and then runs
        on the loop, where nothing else can start a unit until it commits;
      - its busy timeout is 0: when another process (or connection) holds the write lock,
        `BEGIN IMMEDIATE` fails at once, before `work` ran, and the unit is run in the thread
        instead, which waits for the lock as usual (`storage.busy_timeout`);
      - cold reads: only the callers' short, indexed units of the hot path come here
        (`Repository.transaction(hot=True)`); recovery passes, purges and every other
        repository method run in the thread, however cold the pages they read;
      - it never checkpoints (WAL checkpoints fsync): the thread does that every
        CHECKPOINT_EVERY inline commits, in the background.

    Durability is the same on both paths: the same pragmas (WAL, synchronous=NORMAL), and a
    unit of work returns only after its COMMIT.
    """

    CHECKPOINT_EVERY = 500

    def __init__(self, engine: Engine, inline_engine: Engine | None = None) -> None:
        self._engine = engine
        self._inline_engine = inline_engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-db")
        self._closed = False
        self._in_thread = 0  # units of work queued or running in the thread
        self._thread_idle = asyncio.Event()
        self._thread_idle.set()
        self._inline_commits = 0
        self._inline_connection: Connection | None = None
        self._checkpoint: asyncio.Future[Any] | None = None

    async def run(self, work: Work[T], *, write: bool = True) -> T:
        if self._closed:
            raise RuntimeError("the database is closed")
        self._in_thread += 1
        self._thread_idle.clear()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._transaction, work, write
            )
        except Exception as exc:
            if is_outage(exc):
                raise _unavailable(exc) from exc
            raise
        finally:
            self._in_thread -= 1
            if not self._in_thread:
                self._thread_idle.set()

    def _transaction(self, work: Work[T], write: bool) -> T:
        with self._engine.connect() as connection:
            return _unit(connection, work, write)

    async def run_inline(self, work: Work[T], *, write: bool = True) -> T:
        if self._closed:
            raise RuntimeError("the database is closed")
        if self._inline_engine is None:
            return await self.run(work, write=write)
        while self._in_thread:
            # The thread may hold the write lock: wait for it rather than find the database
            # locked (and do not queue there: the loop's units would then keep it busy).
            await self._thread_idle.wait()
        connection = self._inline_connection
        if connection is None or connection.invalidated or connection.closed:
            # Held for the runner's life: checking a connection out of the pool and back in
            # (with its reset) for every unit cost a third of an empty unit's time.
            connection = self._inline_connection = self._inline_engine.connect()
        try:
            result = _unit(connection, work, write, lean=True)
        except sa.exc.OperationalError as exc:
            if not _is_busy(exc):
                if is_outage(exc):
                    raise _unavailable(exc) from exc
                raise
            # Rolled back (BEGIN IMMEDIATE found the lock taken, before `work` ran): run it
            # where waiting is harmless.
            return await self.run(work, write=write)
        self._inline_commits += 1
        if self._inline_commits % self.CHECKPOINT_EVERY == 0:
            self._start_checkpoint()
        return result

    def _start_checkpoint(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._checkpoint = asyncio.get_running_loop().run_in_executor(
            self._executor, self._wal_checkpoint
        )

    def _wal_checkpoint(self) -> None:
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
        except sa.exc.SQLAlchemyError as exc:  # the next one catches up
            log.warning("WAL checkpoint failed: %s", exc)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._inline_connection is not None:
            self._inline_connection.close()
        if self._inline_engine is not None:
            self._inline_engine.dispose()
        # Queued units of work finish first; the connection is closed by the thread that owns it.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.dispose)
        self._executor.shutdown(wait=False)


_BEGIN = {True: "BEGIN IMMEDIATE", False: "BEGIN"}


def _unit(connection: Connection, work: Work[T], write: bool, *, lean: bool = False) -> T:
    """`work` in one explicit transaction on a connection in sqlite3's autocommit mode.

    SQLAlchemy's begin/commit/rollback drive the sqlite3 connection's commit()/rollback(),
    which act on the transaction opened here (the driver issues no BEGIN of its own)."""
    driver = connection.connection.driver_connection
    with connection.begin():
        try:
            driver.execute(_BEGIN[write])
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(
                _BEGIN[write], (), exc, sqlite3.Error, dialect=connection.dialect
            ) from exc
        return work(LeanConnection(connection) if lean else connection)


def _is_busy(exc: sa.exc.OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


def is_sqlite_file(url: str | URL) -> bool:
    url = make_url(url)
    database = url.database
    return (
        url.get_backend_name() == "sqlite"
        and bool(database)
        and database != ":memory:"
        and not database.startswith("file:")
        and url.query.get("mode") != "memory"
    )


def create_runner(
    url: str | URL,
    engine: AsyncEngine,
    *,
    echo: bool = False,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
) -> Runner:
    """The runner for the repository: `SQLiteRunner` for a SQLite file (the same file, opened
    with the synchronous sqlite3 driver and the same pragmas), else the async engine."""
    url = make_url(url)
    if not is_sqlite_file(url):
        return AsyncRunner(engine)
    sync_url = url.set(drivername="sqlite+pysqlite")
    # One connection each, used by one thread at a time (so check_same_thread is moot), in
    # autocommit mode: every unit of work opens its transaction itself (see SQLiteRunner).
    options: dict[str, Any] = {
        "echo": echo,
        "poolclass": sa.pool.QueuePool,
        "pool_size": 1,
        "max_overflow": 0,
        "connect_args": {"check_same_thread": False, "isolation_level": None},
    }
    engine_in_thread = sa.create_engine(sync_url, **options)
    event.listen(
        engine_in_thread, "connect", _sqlite_pragmas(True, busy_timeout_ms=busy_timeout_ms)
    )
    engine_inline = sa.create_engine(sync_url, **options)
    event.listen(engine_inline, "connect", _sqlite_pragmas(True, wait=False))
    return SQLiteRunner(engine_in_thread, engine_inline)


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers `SELECT 1` within PING_TIMEOUT seconds (for /health)."""
    try:
        async with asyncio.timeout(PING_TIMEOUT), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "unhealthy"; the reason goes to the log
        log.warning("database ping failed: %s: %s", type(exc).__name__, exc)
        return False
    return True


@dataclass(frozen=True, slots=True)
class Database:
    """The storage resource: engine, session factory and the repository built on them."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    repo: Repository

    async def ping(self) -> bool:
        return await ping(self.engine)

    async def dispose(self) -> None:
        await self.repo.aclose()
        await self.engine.dispose()


def open_database(
    url: str | URL,
    cipher: SessionCipher,
    *,
    echo: bool = False,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    clock: Clock | None = None,
) -> Database:
    """Build a `Database` without the key handling of `database()`; the caller disposes it."""
    engine = create_engine(url, echo=echo)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    runner = create_runner(url, engine, echo=echo, busy_timeout_ms=busy_timeout_ms)
    return Database(
        engine=engine,
        sessions=sessions,
        repo=Repository(sessions, cipher, runner=runner, clock=clock),
    )


@asynccontextmanager
async def database(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Database]:
    """Open the configured database (the schema must be migrated); dispose it on exit."""
    key, created = load_or_create_key(settings)
    if created:
        log.warning(
            "created a new secret key at %s: back it up, session data cannot be decrypted "
            "without it",
            settings.security.key_file,
        )
    warn_if_exposed(settings.storage.url)
    db = open_database(
        settings.storage.url,
        SessionCipher(key),
        echo=settings.storage.echo,
        busy_timeout_ms=round(settings.storage.busy_timeout * 1000),
        clock=clock,
    )
    try:
        yield db
    finally:
        await db.dispose()
