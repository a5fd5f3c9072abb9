"""Who serves an account (twin.db.cluster): PostgreSQL advisory locks held on each process's
own connection — one owner at a time, released by stop, by the process's connection ending,
and a process whose connection fails stops its accounts (fencing) and joins again; the
heartbeat rows GET /cluster lists; one daemon per SQLite file."""

from __future__ import annotations

import asyncio

import pytest

from tests.db.conftest import (  # noqa: F401  (postgres_url is a fixture)
    _drop_schema,
    _execute,
    make_settings,
    migrated_postgres,
    postgres_url,
)
from twin.clock import SystemClock
from twin.db import migrate
from twin.db.cluster import DaemonFileLock, PostgresOwnership
from twin.db.engine import database
from twin.db.repo import Repository
from twin.errors import StartupError


@pytest.fixture
def pg(migrated_postgres: str) -> str:  # noqa: F811
    return migrated_postgres


def process(url: str, lost: asyncio.Event | None = None) -> PostgresOwnership:
    async def on_lost() -> None:
        if lost is not None:
            lost.set()

    return PostgresOwnership(url, SystemClock(), heartbeat_seconds=0.2, on_lost=on_lost)


async def eventually(check, timeout: float = 10.0) -> None:
    """Poll another party's state (PostgreSQL ending a session) until it holds."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - another party (PostgreSQL) decides
            await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_one_process_serves_an_account_at_a_time(pg) -> None:
    a, b = process(pg), process(pg)
    await a.start()
    await b.start()
    try:
        assert await a.claim(1) and await a.claim(1)  # again: still its own
        assert not await b.claim(1)
        # two claims at once take the lock once (advisory locks are reentrant: a second
        # grant would outlive the release)
        assert await asyncio.gather(a.claim(9), a.claim(9)) == [True, True]
        await a.release(9)
        assert await b.claim(9)
        await b.release(9)
        assert await b.claim(2) and not await a.claim(2)
        assert a.owned() == {1} and b.owned() == {2}
        await a.release(1)
        assert await b.claim(1) and b.owned() == {1, 2}
        await b.stop()  # stopping frees every lock at once
        assert await a.claim(1) and await a.claim(2)
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.postgres
async def test_a_dead_process_frees_its_accounts_and_a_cut_one_stops_serving(pg) -> None:
    lost = asyncio.Event()
    a, b = process(pg, lost), process(pg)
    await a.start()
    await b.start()
    try:
        assert await a.claim(7)
        # kill -9: the client's socket closes; PostgreSQL ends the session and its locks
        a._connection.terminate()
        await eventually(lambda: b.claim(7))
        await b.release(7)
        await a.stop()

        # a database connection cut from the server's side: the process stops serving
        # (on_lost) before anything else, and joins again
        a = process(pg, lost)
        joins: list[int] = []
        a.on_joined(lambda: joins.append(1))  # the event relay catches up on each join
        await a.start()
        assert await a.claim(7) and joins == [1]
        await _execute(
            pg,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = 'twin cluster {a.host}:{a.pid}' "
            f"AND pid <> pg_backend_pid() AND backend_start >= now() - interval '1 hour'",
        )
        async def taken_after_the_fence() -> bool:
            won = await b.claim(7)
            assert not won or lost.is_set()  # never while A may still serve it
            return won

        await eventually(taken_after_the_fence)
        assert a.owned() == frozenset()
        await asyncio.wait_for(a.connected.wait(), 10)  # joined again, owning nothing
        assert not await a.claim(7) and joins == [1, 1]
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.postgres
async def test_heartbeat_rows_list_the_processes(pg, tmp_path) -> None:
    a, b = process(pg), process(pg)
    await a.start()
    await b.start()
    async with database(make_settings(pg, tmp_path)) as db:
        await _rows_listed(db.repo, a, b)


async def _rows_listed(repo: Repository, a: PostgresOwnership, b: PostgresOwnership) -> None:
    try:
        a.serving(["shop", "default"])
        await eventually(lambda: _accounts_of(repo, a.process_id, ["default", "shop"]), timeout=5)
        rows = {row.id: row for row in await repo.cluster_processes()}
        assert set(rows) == {a.process_id, b.process_id}
        assert rows[b.process_id].pid == b.pid and rows[b.process_id].accounts == []
        assert await repo.other_live_processes(a.process_id, 10) == 1
        await b.stop()  # its row goes with it
        assert [row.id for row in await repo.cluster_processes()] == [a.process_id]
    finally:
        await a.stop()
        await b.stop()


async def _accounts_of(repo: Repository, process_id: str, names: list[str]) -> bool:
    rows = {row.id: row for row in await repo.cluster_processes()}
    return process_id in rows and rows[process_id].accounts == names


def test_one_daemon_per_sqlite_file(tmp_path) -> None:
    database = tmp_path / "twin.db"
    first, second = DaemonFileLock(database), DaemonFileLock(database)
    first.acquire()
    with pytest.raises(StartupError, match="already serves the SQLite database"):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first one is gone
    second.release()


@pytest.mark.postgres
async def test_replicas_starting_together_upgrade_the_schema_once(postgres_url) -> None:  # noqa: F811
    try:
        await asyncio.gather(*(migrate.upgrade(postgres_url) for _ in range(3)))
        assert await migrate.is_up_to_date(postgres_url)
    finally:
        await _drop_schema(postgres_url)
