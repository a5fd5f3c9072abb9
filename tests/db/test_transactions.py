"""SQLite units of work are transactions that mean what they say (twin.db.engine.SQLiteRunner):
a writing unit holds the write lock from its first statement to its COMMIT, inline and thread
units never overlap, and a unit that finds another connection holding the write lock waits for
it in the database thread, never on the event loop and never failing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.db.conftest import make_settings
from twin.db import migrate
from twin.db.engine import Database, SQLiteRunner, database

LOOP_THREAD = threading.main_thread().ident


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = tmp_path / "twin.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        connection.execute("INSERT INTO counter VALUES (0)")
    connection.close()
    async with database(make_settings(url, tmp_path)) as db:
        assert isinstance(db.repo._runner, SQLiteRunner)
        yield db, path


def _read(connection) -> int:
    return connection.exec_driver_sql("SELECT n FROM counter").scalar_one()


def _write(connection, n: int) -> None:
    connection.exec_driver_sql(f"UPDATE counter SET n = {n}")


def _other(path: Path, timeout: float = 0.0) -> sqlite3.Connection:
    """Another connection to the file (as another process would have), in autocommit mode."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


class Ticker:
    """Measures the longest time the event loop went without running this task."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now

    def stop(self) -> float:
        self._task.cancel()
        return self.longest


async def test_inline_and_thread_units_never_overlap(sqlite_db) -> None:
    db, _ = sqlite_db
    runner = db.repo._runner
    log: list[tuple[str, str, int | None]] = []
    release = threading.Event()

    started = threading.Event()

    def slow(connection) -> None:  # read, wait, then write: in the thread
        log.append(("thread", "start", threading.get_ident()))
        started.set()
        n = _read(connection)
        release.wait(5)
        _write(connection, n + 1)
        log.append(("thread", "end", None))

    def quick(connection) -> None:  # read then write: inline
        log.append(("inline", "start", threading.get_ident()))
        _write(connection, _read(connection) + 1)
        log.append(("inline", "end", None))

    in_thread = asyncio.create_task(runner.run(slow))
    await asyncio.to_thread(started.wait, 5)
    inline = asyncio.create_task(runner.run_inline(quick))
    await asyncio.sleep(0.2)
    assert [entry[:2] for entry in log] == [("thread", "start")]  # the inline unit waits
    release.set()
    await asyncio.gather(in_thread, inline)

    assert [entry[:2] for entry in log] == [
        ("thread", "start"),
        ("thread", "end"),
        ("inline", "start"),
        ("inline", "end"),
    ]
    assert log[0][2] != LOOP_THREAD and log[2][2] == LOOP_THREAD  # no fallback was needed
    assert await runner.run(_read, write=False) == 2  # no lost update


async def test_a_locked_database_sends_the_inline_unit_to_the_thread_where_it_waits(
    sqlite_db,
) -> None:
    db, path = sqlite_db
    runner = db.repo._runner
    other = _other(path)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
    other.execute("UPDATE counter SET n = n + 10")
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.execute, "COMMIT")  # ...for 0.3 s
    runs: list[int] = []

    def unit(connection) -> int:
        runs.append(threading.get_ident())
        n = _read(connection)
        _write(connection, n + 1)
        return n

    ticker = Ticker()
    started = time.monotonic()
    seen = await runner.run_inline(unit)
    waited = time.monotonic() - started
    longest_gap = ticker.stop()
    other.close()

    assert seen == 10  # it ran after the other transaction committed, and saw it
    assert len(runs) == 1 and runs[0] != LOOP_THREAD  # once, in the thread (BEGIN failed first)
    assert waited >= 0.25
    assert longest_gap < 0.1  # the event loop was never blocked meanwhile
    assert await runner.run(_read, write=False) == 11


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "thread"])
async def test_a_read_then_write_unit_is_atomic_against_another_connection(
    sqlite_db, inline: bool
) -> None:
    db, path = sqlite_db
    runner = db.repo._runner
    other = _other(path)

    def unit(connection) -> None:
        n = _read(connection)
        # Between this unit's read and its write, another connection cannot write: the unit
        # holds the write lock since its BEGIN IMMEDIATE.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("UPDATE counter SET n = n + 10")
        _write(connection, n + 1)

    await (runner.run_inline(unit) if inline else runner.run(unit))
    assert other.execute("SELECT n FROM counter").fetchone() == (1,)
    other.close()


async def test_a_reading_unit_takes_no_write_lock(sqlite_db) -> None:
    db, path = sqlite_db
    runner = db.repo._runner
    other = _other(path)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE counter SET n = 5")
    where: list[int] = []

    def read(connection) -> int:
        where.append(threading.get_ident())
        return _read(connection)

    try:
        # Inline at once, seeing the last committed state, while the other holds the lock.
        assert await runner.run_inline(read, write=False) == 0
        assert where == [LOOP_THREAD]
        assert await db.repo.transaction(lambda tx: tx.get_settings(1), write=False) == {}
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_only_hot_units_run_on_the_event_loop(sqlite_db) -> None:
    db, _ = sqlite_db
    where = []
    await db.repo.transaction(lambda tx: where.append(threading.get_ident()))
    await db.repo.transaction(lambda tx: where.append(threading.get_ident()), hot=False)
    await db.repo._run(lambda connection: where.append(threading.get_ident()))
    assert where[0] == LOOP_THREAD
    assert LOOP_THREAD not in where[1:]  # recovery passes, purges, every repository method
