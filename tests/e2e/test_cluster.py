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
from telethon import events, functions

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


def cluster_process(sandbox, pem, workdir: Path, fake, url: str, max_accounts: int, **api: object):
    workdir.mkdir(parents=True, exist_ok=True)
    daemon = make_process(sandbox, pem, workdir, fake)
    config_path = workdir / "config.toml"
    config = tomllib.loads(config_path.read_text())
    config["storage"]["url"] = url
    config["api"].update(api)
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
        # A request to A for the account B serves is answered by B (forwarded to it), once
        send = {"platform": "telegram", "account": "third", "chat_id": str(contact.id)}
        status, body = await a.call("POST", "/api/v1/messaging/send", json=send | {"text": "via A"})
        assert status == 200 and body["delivery_status"] == "sent", body
        await sandbox.wait_for(
            lambda: "via A" in sandbox.messages_from(owners[2], contact), timeout=10
        )
        # and its connection's state is B's (A has none for it)
        status, body = await a.call("GET", "/auth/status", params={"account": "third"})
        assert status == 200 and body["connected"] and body["authorized"], body
        mode = {"mode": "active", "reason": "checked via A"}
        status, body = await a.call("PUT", "/accounts/third/safety", json=mode)
        assert status == 200 and body["account"] == "third", body
        status, body = await b.call("GET", "/accounts/third/safety")  # B holds the mode
        assert (body["mode"], body["reason"]) == ("active", "checked via A"), body
        status, body = await a.call("GET", "/accounts/third/safety")  # B's own counts
        assert status == 200 and body["calls"]["send"]["last_hour"] >= 1, body

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
    assert sandbox.messages_from(owners[2], contact).count("via A") == 1
    for owner in owners:  # exactly once each
        replies = sandbox.messages_from(owner, contact)
        for tag in ("one", "two", "three" if owner in owners[:2] else "extra"):
            assert replies.count(f"ok: {tag} to {owner.id}") == 1, (owner.id, replies)


async def test_a_draft_is_shown_by_the_bot_another_process_serves_and_sent_from_there(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai, pg
):
    """A serves Olga's account, B the twin's bot. Carl's message is drafted in A; the note
    comes from the bot (B sends it, woken by A's `draft.created`), and Olga's Send pressed
    there (B decides) is delivered by A (woken by B's `reply.scheduled`), once — neither
    waits for a periodic look."""
    owner = sandbox.create_user(OWNERS[0], "Olga")
    contact = sandbox.create_user(CONTACT, "Carl", username="carl_contact")
    sandbox.add_contact(owner, contact)
    sandbox.add_contact(contact, owner)
    bot = sandbox.create_user("15550901", "Olga Bot", username="olga_desk_bot", bot=True)
    fake_openai.respond_with(lambda body: brain_json("ok: " + last_user_line(body["messages"])))
    a = cluster_process(sandbox, sandbox_pem, tmp_path / "a", fake_openai, pg, 1)
    b = cluster_process(sandbox, sandbox_pem, tmp_path / "b", fake_openai, pg, 5)
    try:
        await a.start()
        await login(a, sandbox, "default", OWNERS[0])
        await b.start()
        await DaemonProcess.until(lambda: _alive(a, 2), 10, "B did not join")
        status, body = await b.call("POST", "/bots", json={"token": bot.bot_token})
        assert status == 201, body
        await DaemonProcess.until(lambda: _shares(a, {"default"}, {f"bot-{bot.id}"}), 10, "")
        status, _ = await a.call("PUT", "/settings", json={"twin": {"mode": "draft"}})
        assert status == 200
        phone = await sandbox_clients.signed_in(OWNERS[0])
        from_bot: asyncio.Queue = asyncio.Queue()

        @phone.on(events.NewMessage(incoming=True, from_users=bot.id))
        async def on_bot(event: events.NewMessage.Event) -> None:
            from_bot.put_nowait(event.message)

        await phone.send_message("@olga_desk_bot", "/start")  # a bot cannot write first
        assert (await asyncio.wait_for(from_bot.get(), 15)).message == "ok: /start"

        carl = await sandbox_clients.signed_in(CONTACT)
        await carl(functions.contacts.GetContactsRequest(hash=0))
        await carl.send_message(owner.id, "do you have size M?")
        # well before the drafts task's own minute
        note = await asyncio.wait_for(from_bot.get(), 15)
        assert "ok: do you have size M?" in note.message
        assert [button.text for row in note.buttons for button in row] == ["Send", "Edit", "Skip"]
        assert sandbox.messages_from(owner, contact) == []
        assert (await note.click(0)).message == "Sent."
        await sandbox.wait_for(
            lambda: sandbox.messages_from(owner, contact) == ["ok: do you have size M?"],
            timeout=15,
        )
        assert sandbox.messages_from(owner, owner) == []  # no note in Saved Messages
    finally:
        for daemon in (a, b):
            if daemon.proc is not None:
                daemon.kill()
    assert sandbox.messages_from(owner, contact) == ["ok: do you have size M?"]


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


async def test_thirty_accounts_on_three_processes_through_a_kill_and_a_stop(
    sandbox, sandbox_pem, tmp_path, fake_openai, pg
):
    """The issue's scenario: 3 processes, 30 accounts, 30 contacts writing at once. One
    process is killed mid-traffic (its accounts served by the others within 15 s), another
    is stopped mid-traffic (the last takes its accounts within 5 s); every message is answered
    exactly once, as the contacts see it; the sandbox never sees two connections for one
    account; an SSE client of the last process saw replies the others sent."""
    count = 30
    pairs = []
    for i in range(count):
        owner = sandbox.create_user(f"1552{i:04d}", f"Owner {i}")
        contact = sandbox.create_user(f"1553{i:04d}", f"Contact {i}")
        sandbox.add_contact(owner, contact)
        sandbox.add_contact(contact, owner)
        pairs.append((owner, contact))
    owners = [owner for owner, _ in pairs]
    fake_openai.respond_with(lambda body: brain_json("ok: " + last_user_line(body["messages"])))
    daemons = [  # a login limit per client address of 30 codes in 15 minutes
        cluster_process(
            sandbox, sandbox_pem, tmp_path / name, fake_openai, pg, count, login_attempts=count
        )
        for name in "abc"
    ]
    a, b, c = daemons
    names = {i: f"acc{i}" for i in range(count)}
    watch = Watch(sandbox, owners)
    stream = Stream(c)
    sent: list[tuple[int, str]] = []

    def write(tag: str) -> None:  # every contact at once
        for i, (owner, contact) in enumerate(pairs):
            text = f"{tag} from {contact.id}"
            sandbox.send_message(contact, owner, text)
            sent.append((i, text))

    async def answered(tag: str) -> None:
        await sandbox.wait_for(
            lambda: all(
                f"ok: {tag} from {contact.id}" in sandbox.messages_from(owner, contact)
                for owner, contact in pairs
            ),
            timeout=60,
        )

    try:
        await asyncio.gather(*(daemon.start() for daemon in daemons))
        for i, (owner, _) in enumerate(pairs):  # ten logged in at each process
            await login(daemons[i % 3], sandbox, names[i], owner.phone)
        # each process asked for ten codes, the address for thirty: the limit is the cluster's
        for daemon in daemons:
            status, body = await daemon.call(
                "POST", "/auth/request_code", json={"phone": "+15559999", "account": "extra"}
            )
            assert status == 429 and "from this address" in body["error"]["message"], body
        await DaemonProcess.until(
            lambda: _serves_all(c, {d: 10 for d in (a, b, c)}), 30, "not shared out"
        )
        await stream.open()
        write("one")
        await answered("one")
        for i in range(count):  # C's stream saw the replies A and B sent
            if i % 3 != 2:
                await asyncio.wait_for(stream.sent_by[names[i]].wait(), 10)

        write("two")  # kill -9 A mid-traffic: B and C serve its ten within 15 s
        a.kill()
        loop = asyncio.get_running_loop()
        killed = loop.time()
        await DaemonProcess.until(
            lambda: _served_total(c, set(names.values())), 15, "A's accounts not taken over"
        )
        takeover = loop.time() - killed
        await answered("two")

        write("three")  # SIGTERM B mid-traffic: it finishes its sends, C takes its accounts
        assert await b.stop() == 0, b.output()[-3000:]
        stopped = loop.time()
        await DaemonProcess.until(
            lambda: _serves(c, set(names.values())), 5, "B's accounts not taken over in 5 s"
        )
        handoff = loop.time() - stopped
        await answered("three")
    finally:
        watch.stop()
        await stream.close()
        for daemon in daemons:
            if daemon.proc is not None:
                daemon.kill()
    assert takeover < 15 and handoff < 5, (takeover, handoff)
    assert watch.most == 1  # one connection (one auth key in use) per account at any time
    for i, text in sent:  # exactly once each, as the contacts received them
        owner, contact = pairs[i]
        assert sandbox.messages_from(owner, contact).count(f"ok: {text}") == 1, (i, text)


async def _serves_all(daemon: DaemonProcess, shares: dict[DaemonProcess, int]) -> bool:
    body = await _mine(daemon)
    served = sorted(len(p["accounts"]) for p in body["processes"] if p["alive"])
    return served == sorted(shares.values())


async def _served_total(daemon: DaemonProcess, names: set[str]) -> bool:
    body = await _mine(daemon)
    alive = [set(p["accounts"]) for p in body["processes"] if p["alive"]]
    everything = set().union(*alive) if alive else set()
    return everything == names and sum(map(len, alive)) == len(names)
