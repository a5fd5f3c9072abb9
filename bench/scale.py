"""Scale-out (issue 20): what idle accounts cost, how fast several `twin run` processes answer
together on PostgreSQL, and how quickly a killed process's accounts are taken over.

    python bench/scale.py [--postgres URL] [--idle 1,10,50] [--accounts 30] [--messages 5]
                          [--processes 1,2,3] [--kills 10]

The sandbox MTProto server and the fake OpenAI server (zero latency) run in this process;
every daemon is a real `twin run` subprocess. Figures:

  idle       one process (SQLite), N accounts logged in and connected, nothing happening:
             its resident memory (VmRSS) and CPU over 10 s; the memory per added account.
  replies    `--accounts` accounts, one contact each sending `--messages` messages one after
             the other (the next once the reply came), with 1, 2, 3 processes on PostgreSQL
             (each serving its share): replies per second, and CPU per reply (every process's
             CPU time / replies) — on 2 cores CPU is the ceiling, so per-reply CPU is what shows
             the scaling.
  takeover   two processes on PostgreSQL sharing 3 accounts; the one serving them is killed
             (SIGKILL) `--kills` times: the time until the other serves all of them (p50, max).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.process import DaemonProcess
from tests.providers.openai_fake import FakeOpenAI, brain_json, last_user_line
from twin.db import migrate

FIXED_CODE = "12345"
TICKS = os.sysconf("SC_CLK_TCK")


def config(server: Any, pem: Path, fake: FakeOpenAI, url: str, max_accounts: int) -> dict:
    return {
        "telegram": {"api_id": 12345, "server": f"127.0.0.1:{server.port}",
                     "dc_id": server.dc_id, "rsa_public_key_file": str(pem),
                     "flood_sleep_threshold": 0, "sweep_interval": 3600},
        "storage": {"url": url},
        "llm": {"provider": "openai", "model": "gpt-bench", "base_url": fake.base_url + "/v1",
                "max_retries": 0, "timeout": 30},
        "stt": {"provider": "none"},
        "twin": {"debounce_seconds": 0, "max_replies_per_chat_per_hour": 1_000_000,
                 "max_replies_per_account_per_hour": 1_000_000},
        "schedule": {"hours": {d: ["00:00-24:00"] for d in
                               ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
        "humanize": {"enabled": False},
        "safety": {"sends_per_hour": 1_000_000.0, "sends_burst": 1_000_000,
                   "daily_sends": 0, "history_per_hour": 1_000_000.0,
                   "history_burst": 1_000_000},
        "cluster": {"max_accounts": max_accounts, "claim_seconds": 0.5,
                    "heartbeat_seconds": 0.5},
        "logging": {"level": "WARNING"},
        "api": {"login_attempts": 0, "rate_limit_requests": 0},
    }


def daemon(workdir: Path, cfg: dict) -> DaemonProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    return DaemonProcess(workdir, cfg, {"TWIN_TELEGRAM__API_HASH": "bench-hash",
                                        "TWIN_LLM__API_KEY": "sk-bench",
                                        "TWIN_SECURITY__SECRET_KEY": "bench-secret"})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def login(process: DaemonProcess, server: Any, name: str, phone: str) -> None:
    status, body = await process.call(
        "POST", "/auth/request_code", json={"phone": "+" + phone, "account": name}
    )
    assert status == 200, body
    status, body = await process.call(
        "POST", "/auth/verify_code", json={"phone": "+" + phone, "code": FIXED_CODE,
                                            "account": name},
    )
    assert status == 200 and body["status"] == "authorized", body


async def served(process: DaemonProcess) -> int:
    try:
        _status, body = await process.call("GET", "/cluster")
    except Exception:
        return -1
    mine = [p for p in body.get("processes", []) if p.get("me")]
    return len(mine[0]["accounts"]) if mine else 0


async def _all(process: DaemonProcess) -> bool:
    return await served(process) == 3


def people(server: Any, count: int, tag: int) -> list[tuple[Any, Any]]:
    pairs = []
    for i in range(count):
        owner = server.create_user(f"17{tag}{i:06d}", f"Owner{i}")
        contact = server.create_user(f"18{tag}{i:06d}", f"Contact{i}")
        server.add_contact(owner, contact)
        server.add_contact(contact, owner)
        pairs.append((owner, contact))
    return pairs


async def idle(server: Any, pem: Path, fake: FakeOpenAI, tmp: Path, sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        home = tmp / f"idle-{n}"
        url = f"sqlite+aiosqlite:///{home}/t.db"
        process = daemon(home, config(server, pem, fake, url, n))
        # Migrated beforehand, as every start after the first: a start that upgrades the
        # schema loads Alembic (~12 MB) for the rest of its run.
        await migrate.upgrade(url)
        await process.start()
        try:
            pairs = people(server, n, 1 + len(rows))
            for i, (owner, _) in enumerate(pairs):
                await login(process, server, "default" if i == 0 else f"a{i}", owner.phone)
            await server.wait_for(
                lambda pairs=pairs: all(server.online_sessions(o) >= 1 for o, _ in pairs),
                timeout=120,
            )
            await asyncio.sleep(3)  # settling: start-up sweeps end
            pid = process.proc.pid
            before = cpu_seconds(pid)
            await asyncio.sleep(10)
            cpu = (cpu_seconds(pid) - before) / 10 * 100
            rows.append((n, rss_mb(pid), cpu))
        finally:
            process.terminate(30)
    print("idle accounts (one process, SQLite)")
    for n, rss, cpu in rows:
        print(f"  {n:3d} accounts   RSS {rss:6.1f} MB   CPU {cpu:5.2f} % of a core")
    if len(rows) > 1:
        (n1, r1, _), (n2, r2, _) = rows[0], rows[-1]
        print(f"  per added idle account: {(r2 - r1) / (n2 - n1):.2f} MB")


async def fresh_database(base: str) -> str:
    name = f"twin_bench_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)


async def replies(server: Any, pem: Path, fake: FakeOpenAI, tmp: Path, base: str,
                  accounts: int, messages: int, counts: list[int]) -> None:
    print(f"replies: {accounts} accounts, {messages} messages each (PostgreSQL)")
    for n in counts:
        url = await fresh_database(base)
        share = math.ceil(accounts / n)
        processes = [daemon(tmp / f"r{n}-{i}", config(server, pem, fake, url, share))
                     for i in range(n)]
        for process in processes:
            await process.start()
        try:
            pairs = people(server, accounts, 5 + n)
            for i, (owner, _) in enumerate(pairs):
                await login(processes[i // share], server, f"acc{i}", owner.phone)
            await server.wait_for(
                lambda pairs=pairs: all(server.online_sessions(o) >= 1 for o, _ in pairs),
                timeout=120,
            )
            cpu0 = sum(cpu_seconds(p.proc.pid) for p in processes)
            started = time.perf_counter()

            async def talk(owner: Any, contact: Any) -> None:
                for k in range(messages):
                    text = f"m{k} from {contact.id}"
                    server.send_message(contact, owner, text)
                    await server.wait_for(
                        lambda text=text: f"ok: {text}" in server.messages_from(owner, contact),
                        timeout=60,
                    )

            await asyncio.gather(*(talk(o, c) for o, c in pairs))
            took = time.perf_counter() - started
            cpu = sum(cpu_seconds(p.proc.pid) for p in processes) - cpu0
            total = accounts * messages
            print(f"  {n} process(es): {total / took:6.1f} replies/s   "
                  f"CPU {cpu / total * 1000:6.1f} ms per reply (all processes)")
        finally:
            for process in processes:
                process.terminate(30)


async def takeover(server: Any, pem: Path, fake: FakeOpenAI, tmp: Path, base: str,
                   kills: int) -> None:
    url = await fresh_database(base)
    a = daemon(tmp / "ta", config(server, pem, fake, url, 3))
    b = daemon(tmp / "tb", config(server, pem, fake, url, 3))
    await a.start()
    pairs = people(server, 3, 9)
    for i, (owner, _) in enumerate(pairs):
        await login(a, server, f"t{i}", owner.phone)
    await b.start()
    times = []
    holder, other = a, b
    try:
        for _ in range(kills):
            await DaemonProcess.until(
                lambda h=holder: _all(h), 30, "the accounts are not served", 0.05
            )
            holder.kill()
            killed = time.perf_counter()
            await DaemonProcess.until(lambda o=other: _all(o), 30, "no takeover", 0.02)
            times.append(time.perf_counter() - killed)
            await holder.start()
            holder, other = other, holder
    finally:
        for process in (a, b):
            if process.proc is not None:
                process.terminate(30)
    print(f"takeover after kill -9 ({kills} kills): p50 {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s")


async def run(args: argparse.Namespace) -> None:
    from twin.sandbox.server import SandboxServer

    server = SandboxServer(fixed_code=FIXED_CODE)
    await server.start()
    fake = FakeOpenAI()
    await fake.start()
    fake.respond_with(lambda body: brain_json("ok: " + last_user_line(body["messages"])))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pem = server.write_public_key(tmp / "sandbox.pem")
        try:
            if args.idle:
                await idle(server, pem, fake, tmp, [int(x) for x in args.idle.split(",")])
            if args.processes:
                await replies(server, pem, fake, tmp, args.postgres, args.accounts,
                              args.messages, [int(x) for x in args.processes.split(",")])
            if args.kills:
                await takeover(server, pem, fake, tmp, args.postgres, args.kills)
        finally:
            await fake.stop()
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--idle", default="1,10,50")
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--processes", default="1,2,3")
    parser.add_argument("--kills", type=int, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
