"""The database blinks: SQLite locked by another process past the busy timeout, PostgreSQL
unreachable (behind a proxy the test takes down and brings back). Messages that arrive
meanwhile are held in memory, stored once the database is back, and each is answered exactly
once (issue 11.2: before, they were dropped for good).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from telethon import events

from tests.e2e.conftest import (
    AUTH,
    Daemon,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from tests.faults.checks import assert_exactly_once, until, wait_all_answered
from tests.faults.proxy import TcpProxy
from twin import keys

POSTGRES_ENV = "TWIN_TEST_POSTGRES_URL"


@dataclass
class Blink:
    """The daemon, and how the test takes its database away and brings it back."""

    daemon: Daemon
    down: Callable[[], Awaitable[None]]
    up: Callable[[], Awaitable[None]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def postgres(request: pytest.FixtureRequest) -> URL | None:
    """None for SQLite, else a PostgreSQL database of the test's own."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_database")


@pytest.fixture
async def blink(postgres, sandbox, make_daemon, fake_openai, tmp_path: Path):
    """SQLite: another process holds the write lock past `busy_timeout`. PostgreSQL: the proxy
    in front of the server refuses connections and cuts the open ones."""
    people(sandbox)
    sections = fast_pipeline(fake_openai.base_url + "/v1")
    if postgres is None:
        daemon = await make_daemon(**sections, storage={"busy_timeout": 0.2})
        lock = sqlite3.connect(tmp_path / "twin.db", timeout=30, isolation_level=None)

        async def down() -> None:
            lock.execute("BEGIN EXCLUSIVE")  # a writer that holds on: every write is "locked"

        async def up() -> None:
            lock.execute("ROLLBACK")

        try:
            yield Blink(daemon, down, up)
        finally:
            lock.close()
        return
    proxy = TcpProxy(postgres.host or "127.0.0.1", postgres.port or 5432)
    await proxy.start()
    url = postgres.set(host="127.0.0.1", port=proxy.port)
    try:
        daemon = await make_daemon(
            **sections, storage={"url": url.render_as_string(hide_password=False)}
        )
        yield Blink(daemon, proxy.stop, proxy.start)
    finally:
        await proxy.stop()


async def test_messages_arriving_while_the_database_is_away_are_answered_once(
    blink, postgres, sandbox, sandbox_clients
):
    await _outage_then_recovery(
        blink.daemon, sandbox, sandbox_clients, blink.down, blink.up, held=postgres is None
    )


async def test_a_reply_in_flight_resumes_when_the_database_is_back(
    blink, sandbox, sandbox_clients, fake_openai
):
    await _job_stopped_mid_generation(
        blink.daemon, sandbox, sandbox_clients, fake_openai, blink.down, blink.up
    )


async def _outage_then_recovery(
    daemon, sandbox, sandbox_clients, take_down, bring_back, *, held: bool = True
):
    """SQLite (`held`): the account stays connected and holds what arrives until the database
    answers again. PostgreSQL: the connection that holds the account for this process is cut
    too, so the process stops serving it at once (another process may take it over); once the
    database is back it serves it again and catches up on what arrived meanwhile. Either way
    every message is answered exactly once."""
    owner, contact = sandbox.user("15550100"), sandbox.user("15550200")
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "hello")
    await wait_for_event(daemon, "reply.sent")
    intake = daemon.app[keys.INTAKE]

    await take_down()
    if not held:  # fenced: the account's connection goes before anyone could take it over
        await sandbox.wait_for(lambda: sandbox.online_sessions(owner) == 0, timeout=20)
    texts = ["are you there?", "it is about tomorrow", "call me back"]
    for text in texts:
        await carl.send_message(owner.id, text)
    if held:
        await until(lambda: intake.held == len(texts), intake.changed, 30, "messages to be held")
        response = await daemon.client.get("/metrics", headers=AUTH)
        assert f"twin_intake_held_updates {float(len(texts))}" in await response.text()
    await bring_back()
    if not held:
        await sandbox.wait_for(lambda: sandbox.online_sessions(owner) == 1, timeout=30)

    await until(lambda: intake.held == 0, intake.changed, 60, "held messages to be stored")
    await wait_all_answered(daemon, contact.id, 1 + len(texts))
    await assert_exactly_once(daemon, sandbox, owner, contact)
    assert intake.dropped == 0


async def test_read_receipt_never_passes_a_message_that_is_not_stored(
    sandbox, sandbox_clients, make_daemon, fake_openai, tmp_path: Path
):
    """With no room to hold it (max_held_updates = 0) a message that cannot be stored is
    dropped: later replies in that chat must not mark it read, and the sweep finds it."""
    owner, contact = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1"),
        storage={"busy_timeout": 0.2, "max_held_updates": 0},
    )
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    reads: list[int] = []

    @carl.on(events.MessageRead(inbox=False))
    async def on_read(event) -> None:
        reads.append(event.max_id)

    await carl.send_message(owner.id, "hello")
    await wait_for_event(daemon, "reply.sent")
    intake = daemon.app[keys.INTAKE]
    lock = sqlite3.connect(tmp_path / "twin.db", timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        lost = await carl.send_message(owner.id, "this one is lost")
        await until(lambda: intake.dropped == 1, intake.changed, 30, "the message to be dropped")
        lock.execute("ROLLBACK")
    finally:
        lock.close()
    after = await wait_for_event(daemon, "reply.sent")
    later = await carl.send_message(owner.id, "and this one is not")
    await wait_for_event(daemon, "reply.sent", after=after["id"])
    # The contact's ids and the owner's differ; in the sandbox (as in Telegram) a read receipt
    # reports the contact's own message ids.
    assert reads and max(reads) < lost.id < later.id

    accounts = daemon.app[keys.ACCOUNTS]
    account = await accounts.get()
    taken = await account.sweep(lambda chat, ids: intake.recorded_ids("default", chat, ids))
    assert taken == 1
    await wait_all_answered(daemon, contact.id, 3)
    await assert_exactly_once(daemon, sandbox, owner, contact)


async def _job_stopped_mid_generation(daemon, sandbox, sandbox_clients, fake_openai, down, up):
    """The database goes away while a reply is being generated: the job stops (nothing can be
    recorded), and resumes as soon as the database is back — not when its lease expires."""
    owner, contact = sandbox.user("15550100"), sandbox.user("15550200")
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    worker = daemon.app[keys.SERVICES]["worker"]
    fake_openai.latency = 1.0  # the model takes a while: the outage starts meanwhile
    await carl.send_message(owner.id, "quick question")
    started = await wait_for_event(daemon, "reply.generating")
    await down()
    await until(lambda: started["reply"] in worker.stalled, worker.idle, 30, "the job to stop")
    fake_openai.latency = 0.0
    await up()

    await wait_all_answered(daemon, contact.id, 1)
    await assert_exactly_once(daemon, sandbox, owner, contact)
    assert not worker.stalled


@pytest.mark.postgres
async def test_a_database_not_reachable_at_start_is_waited_for_then_migrated(
    sandbox, make_daemon, postgres_database
):
    """Review of issue 11: starting on an unchecked schema made every write fail as a bug."""
    from twin.db import migrate

    proxy = TcpProxy(postgres_database.host or "127.0.0.1", postgres_database.port or 5432)
    proxy.refusing = True  # as PostgreSQL still starting on boot: connections are cut
    await proxy.start()
    url = postgres_database.set(host="127.0.0.1", port=proxy.port)
    rendered = url.render_as_string(hide_password=False)
    starting = asyncio.ensure_future(make_daemon(storage={"url": rendered}))
    try:
        await asyncio.wait_for(proxy.refused.wait(), 30)
        assert not starting.done()  # waiting for the database, not running on an unknown schema
        proxy.refusing = False
        daemon = await asyncio.wait_for(starting, 60)
        assert (await daemon.client.get("/health")).status == 200
        assert await migrate.current(rendered) == migrate.head()
    finally:
        if not starting.done():
            starting.cancel()
        await proxy.stop()


@pytest.mark.postgres
async def test_a_database_that_refuses_twin_stops_the_start_with_one_line(
    sandbox, make_daemon, postgres_database
):
    from twin.errors import StartupError

    missing = postgres_database.set(database=postgres_database.database + "_missing")
    with pytest.raises(StartupError, match="cannot use the database"):
        await make_daemon(storage={"url": missing.render_as_string(hide_password=False)})
