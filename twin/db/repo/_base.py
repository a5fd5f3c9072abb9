"""Shared plumbing of the repository mixins: units of work, dialect-specific inserts, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from twin.clock import Clock, SystemClock
from twin.db.base import stamped_by
from twin.db.crypto import SessionCipher
from twin.domain.knowledge import TermStats
from twin.errors import Conflict

T = TypeVar("T")

# Keeps every IN (…) list well below SQLite's and asyncpg's bound-parameter limits.
CHUNK = 500


class RepoBase:
    """State shared by the mixins. Every public method is one unit of work: a synchronous
    function of a Connection, run in its own short transaction by the runner (a dedicated
    thread for a SQLite file, the async engine otherwise; see twin.db.engine)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: SessionCipher,
        *,
        runner: Any = None,
        clock: Clock | None = None,
    ) -> None:
        from twin.db.engine import AsyncRunner

        # Every time the repository stamps (finished_at, updated_at, a message's default date,
        # and the column defaults through `stamped_by`) comes from the one injected clock, as
        # the services' do.
        self._clock: Clock = clock or SystemClock()
        self._sessions = sessions
        self._cipher = cipher
        self._runner = runner if runner is not None else AsyncRunner(sessions.kw["bind"])
        # per twin: its knowledge base's version and term statistics (PostgreSQL's BM25,
        # repo/knowledge.py)
        self._term_cache: dict[int, tuple[Any, TermStats]] = {}
        # The process the leases this repository writes belong to (replies.leased_by): set
        # when several processes share the database (twin.lifecycle_cluster), else None.
        self.lease_owner: str | None = None

    async def _run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """`work` as one unit of work in the runner's thread (may wait for locks)."""
        return await self._runner.run(self._stamped(work), write=write)

    async def _read(self, work: Callable[[Connection], T]) -> T:
        """`_run` for a unit that only reads (on SQLite: BEGIN DEFERRED, never waits)."""
        return await self._runner.run(self._stamped(work), write=False)

    def _stamped(self, work: Callable[[Connection], T]) -> Callable[[Connection], T]:
        """`work` with the repository's clock as the column defaults' clock (`stamped_by`),
        set in whichever thread or greenlet runs it."""
        clock = self._clock

        def unit(connection: Connection) -> T:
            token = stamped_by.set(clock)
            try:
                return work(connection)
            finally:
                stamped_by.reset(token)

        return unit

    async def aclose(self) -> None:
        """Finish queued work and release the runner's resources (Database.dispose calls it)."""
        await self._runner.aclose()

    @staticmethod
    def _insert(connection: Connection, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for the connection's backend."""
        # Each backend's module imported on its first use: a daemon on SQLite never loads
        # the PostgreSQL dialects (2 MB).
        dialect = connection.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            raise NotImplementedError(f"no upsert support for {dialect}")
        return insert(table)

    @staticmethod
    def _is_postgres(connection: Connection) -> bool:
        return connection.dialect.name == "postgresql"


def check_fields(fields: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise TypeError(f"{what}: cannot update {', '.join(unknown)}")


@contextmanager
def conflict_on_integrity(message: str) -> Iterator[None]:
    """Turn a unique/foreign-key violation into the domain's Conflict."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(f"{message} ({type(exc.orig).__name__})") from None


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
