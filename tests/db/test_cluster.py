"""Who serves an account (twin.db.cluster): PostgreSQL advisory locks held on each process's
own connection — one owner at a time, released by stop, by the process's connection ending,
and a process whose connection fails stops its accounts (fencing) and joins again; the
heartbeat rows GET /cluster lists; one daemon per SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.db.conftest import (  # noqa: F401  (postgres_url is a fixture)
    _drop_schema,
    _execute,
    make_settings,
    migrated_postgres,
    postgres_url,
)
from twin.clock import SystemClock
from twin.db import cluster, migrate
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
async def test_stop_lets_its_short_tasks_end_and_never_waits_on_a_stuck_one(
    pg, monkeypatch
) -> None:
    """A catch-up's query under way when the process stops is let finish, not cancelled
    mid-flight (which can leave SQLAlchemy's asyncpg adapter waiting for ever); a task that
    ignores its cancellation does not keep stop() waiting."""
    a = process(pg)
    await a.start()
    answered, cancelled, connected = asyncio.Event(), [], []

    async def query() -> None:
        try:
            await answered.wait()
            connected.append(a.connected.is_set())  # stop() has not closed the connection yet
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    a.spawn(query())
    stopping = asyncio.create_task(a.stop())
    for _ in range(100):  # the old stop() had cancelled it by now
        await asyncio.sleep(0)
    assert not stopping.done() and not cancelled
    answered.set()
    await asyncio.wait_for(stopping, 10)
    assert not cancelled and not a._sends and connected == [True]

    b = process(pg)
    await b.start()
    monkeypatch.setattr(cluster, "_CONNECT_TIMEOUT", 0.2)
    give_up = asyncio.Event()

    async def stubborn() -> None:
        while not give_up.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await give_up.wait()

    b.spawn(stubborn())
    stuck = next(iter(b._sends))
    try:
        await asyncio.wait_for(b.stop(), 10)  # returned, the task still running
        assert not stuck.done()
    finally:
        give_up.set()
        await asyncio.wait_for(stuck, 10)


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


@pytest.mark.postgres
async def test_the_longest_running_process_makes_the_periodic_passes(pg, tmp_path) -> None:
    """Contact memory and retention run in one process of the cluster: the first started
    among the live ones; when it stops, the next one."""
    from twin.lifecycle_cluster import first_in_cluster

    a, b = process(pg), process(pg)
    await a.start()
    await b.start()
    try:
        async with database(make_settings(pg, tmp_path)) as db:
            repo = db.repo
            assert await first_in_cluster(a, repo, 10) is True
            assert await first_in_cluster(b, repo, 10) is False
            await a.stop()
            assert await first_in_cluster(b, repo, 10) is True
            await b.stop()  # nobody listed: whoever asks makes the pass
            assert await first_in_cluster(b, repo, 10) is True
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.postgres
async def test_a_dead_processs_leases_are_voided_and_a_live_ones_kept(pg, tmp_path) -> None:
    """A reply job leased by a process that is gone (killed, or stopped with it unfinished)
    is claimable again at once; one leased by a live process is not touched."""
    from datetime import UTC, datetime, timedelta

    from twin.lifecycle_cluster import ClusterChores

    a, b = process(pg), process(pg)
    await a.start()
    await b.start()
    try:
        async with database(make_settings(pg, tmp_path)) as db:
            repo = db.repo
            account = await repo.get_or_create_account("web")
            chat, _ = await repo.upsert_chat(account.id, 7, kind="private", title="Web user")
            now = datetime.now(UTC)
            jobs = {}
            for owner in (a, b):
                repo.lease_owner = owner.process_id
                jobs[owner.process_id] = await repo.create_reply(
                    account.id, chat.id, reply_at=now, lease_until=now + timedelta(minutes=15)
                )
            assert await repo.release_orphaned_leases(10, keep=b.process_id) == 0  # alive
            await a.stop()  # gone with its job leased
            woken = asyncio.Event()
            # the chore of another process than the longest-running live one does nothing
            assert await ClusterChores(repo, "other", woken.set, 10, 10).run_once() == 0
            assert not woken.is_set()
            # b's own job stays leased; a's is claimable again and b's worker is woken
            assert await ClusterChores(repo, b.process_id, woken.set, 10, 10).run_once() == 1
            assert woken.is_set()
            repo.lease_owner = b.process_id
            claimed = await repo.claim_due_replies(now + timedelta(seconds=1), 900)
            assert [job.id for job in claimed] == [jobs[a.process_id].id]
            assert claimed[0].attempts == 2
            assert await repo.release_orphaned_leases(10, keep="x") == 0  # b holds both, alive
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.postgres
async def test_long_silent_processes_are_forgotten_by_the_chore_not_by_reading(
    pg, tmp_path
) -> None:
    """A process silent for `forget` seconds leaves the list when the cluster's chores run
    (the longest-running live process), and so do rate windows whose hits all left their
    window a minute ago; reading the list changes nothing."""
    from twin.lifecycle_cluster import ClusterChores

    a = process(pg)
    await a.start()
    try:
        await _execute(
            pg,
            "INSERT INTO cluster_processes (id, host, pid, started_at, heartbeat_at, accounts) "
            "VALUES ('gone', 'h', 1, now() - interval '3 hours', now() - interval '1 hour', '[]'),"
            " ('late', 'h', 2, now() - interval '3 hours', now() - interval '100 seconds', '[]')",
            "INSERT INTO rate_windows (name, key, hits, expires_at) VALUES "
            f"('token', 'old', '[]', {time.time() - 61}),"
            f" ('token', 'new', '[]', {time.time() + 60})",
        )
        async with database(make_settings(pg, tmp_path)) as db:
            repo = db.repo
            listed = {row.id for row in await repo.cluster_processes()}
            assert listed == {a.process_id, "gone", "late"}
            # not its turn (its id is not the longest-running live one's): nothing goes
            assert await ClusterChores(repo, "other", lambda: None, 10, 60).run_once() == 0
            assert len(await repo.cluster_processes()) == 3
            chore = ClusterChores(repo, a.process_id, lambda: None, 10, 60, forget=300)
            await chore.run_once()
            assert {row.id for row in await repo.cluster_processes()} == {a.process_id, "late"}
            assert await repo.rate_sweep(time.time() - 60) == 0  # 'old' went with the chores
    finally:
        await a.stop()


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
