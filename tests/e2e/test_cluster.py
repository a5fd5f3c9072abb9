"""Several `twin run` processes on one PostgreSQL (issue 20): each account is served by exactly
one process (checked from the sandbox's side: one connection per account at a time), a killed
process's accounts are taken over by another and every message is answered exactly once, a
stopped one hands its accounts over; GET /cluster shows who serves what. And a second daemon
on one SQLite file refuses to start."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest
import tomli_w
from telethon import functions

from tests.db.conftest import migrated_postgres, postgres_url  # noqa: F401  (fixtures)
from tests.e2e.process import AUTH, DaemonProcess
from tests.e2e.test_crash_safety import make_process
from tests.providers.openai_fake import brain_json, last_user_line

pytestmark = pytest.mark.e2e

OWNERS = ("15550100", "15550101", "15550102")
CONTACT = "15550199"


@pytest.fixture
def pg(migrated_postgres: str) -> str:  # noqa: F811
    return migrated_postgres


def cluster_process(sandbox, pem, workdir: Path, fake, url: str, max_accounts: int):
    workdir.mkdir(parents=True, exist_ok=True)
    daemon = make_process(sandbox, pem, workdir, fake)
    config_path = workdir / "config.toml"
    config = tomllib.loads(config_path.read_text())
    config["storage"]["url"] = url
    config["cluster"] = {
        "max_accounts": max_accounts,
        "claim_seconds": 0.5,
        "heartbeat_seconds": 0.5,
    }
    config_path.write_text(tomli_w.dumps(config))
    return daemon


class Watch:
    """Observes the sandbox: the most connections any owner ever had at once."""

    def __init__(self, sandbox, owners) -> None:
        self.sandbox, self.owners, self.most = sandbox, owners, 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:  # sampling another program's state: nothing to wait on
            for owner in self.owners:
                self.most = max(self.most, self.sandbox.online_sessions(owner))
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self.task.cancel()


async def served(daemon: DaemonProcess) -> dict[str, list[str]]:
    status, body = await daemon.call("GET", "/cluster")
    assert status == 200, body
    return {p["id"]: sorted(p["accounts"]) for p in body["processes"] if p["alive"]}


async def test_accounts_move_between_processes_and_every_message_is_answered_once(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai, pg
):
    owners = [sandbox.create_user(phone, f"Owner {i}") for i, phone in enumerate(OWNERS)]
    contact = sandbox.create_user(CONTACT, "Carl", username="carl_contact")
    for owner in owners:
        sandbox.add_contact(owner, contact)
        sandbox.add_contact(contact, owner)
    fake_openai.respond_with(lambda body: brain_json("ok: " + last_user_line(body["messages"])))
    names = ["default", "second", "third"]

    # A serves two accounts at most, B three; A logs two in, B the third
    a = cluster_process(sandbox, sandbox_pem, tmp_path / "a", fake_openai, pg, 2)
    b = cluster_process(sandbox, sandbox_pem, tmp_path / "b", fake_openai, pg, 3)
    await a.start()
    await b.start()
    for daemon, name, phone in zip((a, a, b), names, OWNERS, strict=True):
        await login(daemon, sandbox, name, phone)
    watch = Watch(sandbox, owners)
    carl = await sandbox_clients.signed_in(CONTACT)
    await carl(functions.contacts.GetContactsRequest(hash=0))

    async def answered(tag: str, who: list) -> None:
        await sandbox.wait_for(
            lambda: all(
                f"ok: {tag} to {owner.id}" in sandbox.messages_from(owner, contact) for owner in who
            ),
            timeout=30,
        )

    stream = Stream(a)
    try:
        await DaemonProcess.until(
            lambda: _shares(a, {"default", "second"}, {"third"}), 15, "not shared out"
        )
        await stream.open()
        # /metrics tells the processes apart
        body = await _mine(a)
        me = next(p for p in body["processes"] if p["me"])
        metrics = await _metrics(a)
        assert f'process="{me["id"]}"' in metrics and "twin_accounts_served 2.0" in metrics
        for owner in owners:
            await carl.send_message(owner.id, f"one to {owner.id}")
        await answered("one", owners)
        # A's event stream has B's replies too (LISTEN/NOTIFY between the processes)
        for name in names:
            await asyncio.wait_for(stream.sent_by[name].wait(), 10)

        # kill -9 A mid-traffic: B takes its accounts over and answers what A left
        for owner in owners:
            await carl.send_message(owner.id, f"two to {owner.id}")
        a.kill()
        await DaemonProcess.until(
            lambda: _serves(b, set(names)), 15, "B did not take A's accounts over in 15 s"
        )
        await answered("two", owners)

        # a stopped process hands its accounts over: A again (B serves everything), B stops
        await a.start()
        await DaemonProcess.until(lambda: _alive(a, 2), 10, "A did not join")
        assert await _serves(a, set())
        # A serves nothing now: its stream hears of B's reply only through the relay
        # (without it, not before the stream's 15 s heartbeat)
        relayed = Stream(a)
        await relayed.open()
        await carl.send_message(owners[2].id, f"extra to {owners[2].id}")
        await answered("extra", owners[2:])
        try:
            await asyncio.wait_for(relayed.sent_by["third"].wait(), 5)
        finally:
            await relayed.close()
        assert b.terminate() == 0
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        await DaemonProcess.until(
            lambda: _serves(a, {"default", "second"}), 10, "A did not take accounts over"
        )
        handoff = loop.time() - stopped
        for owner in owners[:2]:  # the third waits for a process with room for it
            await carl.send_message(owner.id, f"three to {owner.id}")
        await answered("three", owners[:2])
    finally:
        watch.stop()
        await stream.close()
        for daemon in (a, b):
            if daemon.proc is not None:
                daemon.kill()
    assert handoff < 5, handoff
    assert watch.most == 1  # never two connections (two processes) for one account
    for owner in owners:  # exactly once each
        replies = sandbox.messages_from(owner, contact)
        for tag in ("one", "two", "three" if owner in owners[:2] else "extra"):
            assert replies.count(f"ok: {tag} to {owner.id}") == 1, (owner.id, replies)


class Stream:
    """`GET /events?types=reply.sent` of one process, read as a browser would."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.sent_by: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self.task: asyncio.Task[None] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.response: aiohttp.ClientResponse | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(headers=AUTH)
        response = await self.session.get(self.daemon.base + "/events?types=reply.sent")
        self.response = response
        assert response.status == 200
        self.task = asyncio.create_task(self._read(response))

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        async for line in response.content:
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                self.sent_by[event.get("account") or ""].set()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.response is not None:
            self.response.close()
        if self.session is not None:
            await self.session.close()


async def login(daemon: DaemonProcess, sandbox, name: str, phone: str) -> None:
    status, body = await daemon.call(
        "POST", "/auth/request_code", json={"phone": "+" + phone, "account": name}
    )
    assert status == 200, (body, daemon.output())
    status, body = await daemon.call(
        "POST",
        "/auth/verify_code",
        json={"phone": "+" + phone, "code": sandbox.last_code(phone), "account": name},
    )
    assert status == 200 and body["status"] == "authorized", body


async def _metrics(daemon: DaemonProcess) -> str:
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(daemon.base + "/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


async def _mine(daemon: DaemonProcess) -> dict:
    status, body = await daemon.call("GET", "/cluster")
    assert status == 200, body
    return body


async def _shares(a: DaemonProcess, first: set[str], second: set[str]) -> bool:
    body = await _mine(a)
    served = [set(p["accounts"]) for p in body["processes"] if p["alive"]]
    return sorted(map(sorted, served)) == sorted(map(sorted, (first, second)))


async def _alive(daemon: DaemonProcess, count: int) -> bool:
    body = await _mine(daemon)
    return len([p for p in body["processes"] if p["alive"]]) == count


async def _serves(daemon: DaemonProcess, names: set[str]) -> bool:
    body = await _mine(daemon)
    mine = [p for p in body["processes"] if p["me"]]
    return bool(mine) and set(mine[0]["accounts"]) == names


def test_a_second_daemon_on_one_sqlite_file_refuses_to_start(tmp_path) -> None:
    config = {"storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"}, "api": {"port": 0}}
    (tmp_path / "config.toml").write_text(tomli_w.dumps(config))
    env = {"TWIN_SECURITY__SECRET_KEY": "cluster-secret", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "twin", "run", "--config", "config.toml"]
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=log)
    try:
        lock = tmp_path / "twin.db.lock"
        for _ in range(600):  # another program's state: polled until it took the lock
            if lock.exists() and lock.read_text().startswith("pid"):
                break
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=60)
        assert second.returncode == 2, second.stderr.decode()
        error = second.stderr.decode()
        assert "already serves the SQLite database" in error and "PostgreSQL" in error
        assert "Traceback" not in error
    finally:
        first.terminate()
        first.wait(30)
        log.close()


async def test_a_fenced_account_never_reconnects_but_the_next_claim_serves_it(
    sandbox, make_daemon, fake_openai
) -> None:
    """`fence()` (ownership lost) closes every account object: the old one refuses to start
    again, whatever still holds it (a supervisor, a start under way); the claim loop then
    serves the account with a new object once it is claimed again."""
    from tests.e2e.conftest import fast_pipeline, login, people
    from twin import keys
    from twin.errors import TelegramUnavailable

    owner, _ = people(sandbox)
    daemon = await make_daemon(
        **fast_pipeline(fake_openai.base_url + "/v1"), cluster={"claim_seconds": 0.2}
    )
    await login(daemon, sandbox)
    accounts = daemon.client.app[keys.ACCOUNTS]
    old = accounts.loaded("default")
    assert old is not None and old.running
    await accounts.fence()
    assert not old.running and accounts.loaded("default") is not old
    with pytest.raises(TelegramUnavailable):  # whatever still holds it cannot revive it
        await old.start()
    await sandbox.wait_for(lambda: sandbox.online_sessions(owner) == 0, timeout=10)
    # this process may serve it again (alone here): the claim loop connects a new object
    await sandbox.wait_for(lambda: sandbox.online_sessions(owner) == 1, timeout=20)
    new = accounts.loaded("default")
    assert new is not None and new is not old and new.running
