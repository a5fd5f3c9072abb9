"""Engine factory, health ping and the `database(settings)` resource used by the lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
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
        await self.engine.dispose()


def open_database(url: str | URL, cipher: SessionCipher, *, echo: bool = False) -> Database:
    """Build a `Database` without the key handling of `database()`; the caller disposes it."""
    engine = create_engine(url, echo=echo)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions, repo=Repository(sessions, cipher))


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
