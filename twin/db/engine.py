"""Engine factory, health ping, the repository's unit-of-work runners and the
`database(settings)` resource used by the lifecycle."""

from __future__ import annotations

import asyncio
import logging
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

from twin.db.crypto import SessionCipher, load_or_create_key
from twin.db.repo import Repository
from twin.errors import ConfigError

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
    synchronous=NORMAL; the database file's directory is created if missing.
    """
    url = make_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        _ensure_sqlite_dir(url)
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


def _ensure_sqlite_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(foreign_keys: bool):
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return on_connect


# --- units of work -------------------------------------------------------------------------------


class Runner(Protocol):
    """Runs `work(connection)` in one transaction: committed when it returns, rolled back when
    it raises. Every repository method is one unit of work."""

    async def run(self, work: Work[T]) -> T: ...

    async def aclose(self) -> None: ...


class AsyncRunner:
    """Units of work on an AsyncEngine (PostgreSQL/asyncpg, in-memory SQLite): the synchronous
    `work` runs through SQLAlchemy's greenlet bridge, each statement awaiting the driver."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: Work[T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def aclose(self) -> None:
        """The engine belongs to the caller, who disposes it."""


class ThreadRunner:
    """Units of work on a file SQLite database, each run whole in one dedicated thread.

    Why: through aiosqlite every statement costs several thread hops (cursor, execute, fetch,
    close, commit, the pool's reset), ~0.5 ms of CPU for a one-row query; the event loop then
    spends most of its time handing work to threads. Here a whole transaction is one hop
    (~0.05 ms for the same query). SQLite lets one writer in at a time anyway, so one thread
    with one connection loses no parallelism, and it keeps repository calls in the order they
    were made. Durability is unchanged: the same pragmas, and a unit of work returns only after
    its COMMIT.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-db")
        self._closed = False

    async def run(self, work: Work[T]) -> T:
        if self._closed:
            raise RuntimeError("the database is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._transaction, work
        )

    def _transaction(self, work: Work[T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Queued units of work finish first; the connection is closed by the thread that owns it.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.dispose)
        self._executor.shutdown(wait=False)


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


def create_runner(url: str | URL, engine: AsyncEngine, *, echo: bool = False) -> Runner:
    """The runner for the repository: a dedicated thread for a SQLite file (the same file,
    opened with the synchronous sqlite3 driver and the same pragmas), else the async engine."""
    url = make_url(url)
    if not is_sqlite_file(url):
        return AsyncRunner(engine)
    sync_engine = sa.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        echo=echo,
        # One thread, one connection: no pool contention, no busy waits between our own
        # connections. check_same_thread is moot (the connection never leaves its thread).
        poolclass=sa.pool.QueuePool,
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False},
    )
    event.listen(sync_engine, "connect", _sqlite_pragmas(True))
    return ThreadRunner(sync_engine)


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


def open_database(url: str | URL, cipher: SessionCipher, *, echo: bool = False) -> Database:
    """Build a `Database` without the key handling of `database()`; the caller disposes it."""
    engine = create_engine(url, echo=echo)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    runner = create_runner(url, engine, echo=echo)
    return Database(
        engine=engine, sessions=sessions, repo=Repository(sessions, cipher, runner=runner)
    )


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """Open the configured database (the schema must be migrated); dispose it on exit."""
    key, created = load_or_create_key(settings)
    if created:
        log.warning(
            "created a new secret key at %s: back it up, session data cannot be decrypted "
            "without it",
            settings.security.key_file,
        )
    db = open_database(settings.storage.url, SessionCipher(key), echo=settings.storage.echo)
    try:
        yield db
    finally:
        await db.dispose()
