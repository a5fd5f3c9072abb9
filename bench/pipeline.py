"""The daemon's hot path over the sandbox: a bare Telethon echo vs the full twin.

    python bench/pipeline.py [--contacts 100] [--messages 20] [--llm http,inproc]
                             [--variants echo,twin] [--profile DIR] [--cprofile DIR]

Every variant answers `--contacts` contacts x `--messages` messages, conversation style: each
contact sends its next message only once the reply to the previous one has arrived, and all
contacts talk at once. Contacts have no clients: the driver posts their messages with the
sandbox's `send_message` (server side). The latency of one message is the time from that send
to the moment the sandbox stores the owner's reply (recorded by a hook on this server instance's
`world.post_message`, so it is measured inside the server, not by a client).

Variants, each in its own subprocess so that its peak RSS (VmHWM) and CPU time are the answering
process's own, not the sandbox's or the driver's:

  echo         one TelegramClient for the owner, `events.NewMessage(incoming=True)` → respond.
  twin/http    the real daemon (create_app, served on loopback, owner logged in through the
               API), with the real openai SDK talking to FakeOpenAI (zero latency) running in
               the driver process, i.e. over loopback HTTP as a real provider would be.
  twin/inproc  the same daemon with the real Brain over an in-process LLM port (no HTTP): shows
               what the openai SDK + HTTP round trip costs.

Zero human delays: `humanize.enabled = false`, debounce 0, always open, rate limits out of
reach. SQLite (the default) in a temporary directory. Correctness is checked afterwards: every
message got exactly one reply, and it is the reply to *that* message (the fake echoes it).

`--profile DIR` records the daemon child with py-spy during the measured phase (speedscope +
a collapsed-stack file, summarised on stdout); `--cprofile DIR` runs cProfile inside the child
during the measured phase (main thread only: SQLite work runs in aiosqlite's thread).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXED_CODE = "24680"
OWNER_PHONE = "15550100"
TOKEN = "bench-token-0123456789abcdef"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REPLY_TIMEOUT = 60.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def proc_status(field: str) -> int:
    """A `kB` field of /proc/self/status (VmHWM = peak RSS, VmRSS = current)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu() -> dict[str, list[float]]:
    """user/system CPU seconds per thread id ("main" for the event loop's thread)."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: dict[str, list[float]] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            name = task.name if task.name != str(os.getpid()) else "main"
            fields = stat[stat.rindex(")") + 2 :].split()
            entry = result.setdefault(name, [0.0, 0.0, 0])
            entry[0] += int(fields[11]) / ticks
            entry[1] += int(fields[12]) / ticks
            entry[2] += 1
    return result


# ================================================================================================
# The child: the process that answers (echo client or twin daemon).
# ================================================================================================


def emit(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class InProcessLLM:
    """The LLM port without HTTP: echoes the last line the contact wrote, as a BrainReply."""

    provider = "bench"
    model = "bench-echo"

    async def complete(self, messages: Any, *, json_schema: Any = None, max_tokens: int,
                       temperature: float) -> Any:
        from tests.providers.openai_fake import brain_json, last_user_line
        from twin.brain.port import Completion

        plain = [{"role": m.role, "content": m.content} for m in messages]
        text = json.dumps(brain_json(f"echo: {last_user_line(plain)[:200]}"), ensure_ascii=False)
        prompt = sum(len(m.content) for m in messages) // 4
        return Completion(text=text, prompt_tokens=prompt, completion_tokens=len(text) // 4,
                          model=self.model, provider=self.provider, finish_reason="stop")


async def _commands(handlers: dict[str, Any]) -> None:
    """Serve the driver's line commands on stdin until "stop"."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            return
        name, _, arg = line.partition(" ")
        result = await handlers[name](arg) if name in handlers else {"error": f"unknown {name}"}
        emit(reply=name, **(result or {}))


def _profiling_handlers(out_dir: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {}

    async def start(_: str) -> dict[str, Any]:
        if out_dir:
            import cProfile

            state["profile"] = cProfile.Profile()
            state["profile"].enable()
        return {"cpu": cpu_seconds()}

    async def end(_: str) -> dict[str, Any]:
        cpu = cpu_seconds()
        if "profile" in state:
            state["profile"].disable()
            path = Path(out_dir) / f"{os.environ.get('BENCH_LABEL', 'child')}.prof"
            state["profile"].dump_stats(path)
        return {"cpu": cpu, "threads": thread_cpu()}

    return {"mark_start": start, "mark_end": end}


async def child_echo(config: dict[str, Any]) -> None:
    from telethon import TelegramClient, events
    from telethon.crypto import rsa
    from telethon.sessions import StringSession

    rsa.add_key(Path(config["pem"]).read_text(), old=False)
    session = StringSession()
    session.set_dc(config["dc_id"], "127.0.0.1", config["port"])
    client = TelegramClient(session, 12345, "0123456789abcdef0123456789abcdef")
    await client.connect()
    await client.send_code_request("+" + OWNER_PHONE)
    await client.sign_in("+" + OWNER_PHONE, FIXED_CODE)

    @client.on(events.NewMessage(incoming=True))
    async def echo(event: Any) -> None:
        await event.respond(f"echo: {event.raw_text}")

    await client.catch_up()
    emit(ready=True, rss_kb=proc_status("VmRSS"))
    await _commands(_profiling_handlers(config.get("cprofile")))
    await client.disconnect()
    emit(done=True, hwm_kb=proc_status("VmHWM"), rss_kb=proc_status("VmRSS"), cpu=cpu_seconds())


def twin_settings(config: dict[str, Any]) -> Any:
    from twin.config import load_settings

    many = 1_000_000
    sections: dict[str, dict[str, Any]] = {
        "telegram": {
            "api_id": 12345,
            "api_hash": "bench-api-hash",
            "server": f"127.0.0.1:{config['port']}",
            "dc_id": config["dc_id"],
            "rsa_public_key_file": config["pem"],
            "flood_sleep_threshold": 0,
            "sweep_interval": 3600,
        },
        "storage": {"url": f"sqlite+aiosqlite:///{config['tmp']}/twin.db"},
        "security": {"secret_key": "bench-secret-key"},
        "api": {"tokens": [TOKEN]},
        "stt": {"provider": "none"},
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": config.get("llm_base_url") or "http://127.0.0.1:9/v1",
            "api_key": "sk-test",
            "max_retries": 0,
            "timeout": 10,
        },
        "twin": {
            "debounce_seconds": 0,
            "debounce_max_seconds": 0,
            "owner_name": "Olga",
            "max_replies_per_chat_per_hour": many,
            "max_replies_per_account_per_hour": many,
        },
        "schedule": {"hours": {day: ["00:00-24:00"] for day in DAYS}},
        "humanize": {"enabled": False},
        "logging": {"level": "INFO"},
    }
    return load_settings(None, **sections)


async def child_twin(config: dict[str, Any]) -> None:
    from aiohttp import web
    from sqlalchemy import text

    from twin import keys
    from twin.app import Adapters, create_app
    from twin.logs import setup_logging

    settings = twin_settings(config)
    setup_logging(level="INFO", secrets=settings.secret_values())  # as `twin run` (to stderr)
    adapters = Adapters()
    if config["llm"] == "inproc":
        from twin.brain.factory import build_brain

        adapters = Adapters(brain=build_brain(settings.llm, InProcessLLM()))
    app = create_app(settings, adapters=adapters)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emit(ready=True, api_port=api_port, rss_kb=proc_status("VmRSS"))

    async def db_stats(_: str) -> dict[str, Any]:
        engine = app[keys.DATABASE].engine
        async with engine.connect() as connection:
            replies = dict((await connection.execute(
                text("SELECT state, count(*) FROM replies GROUP BY state"))).all())
            incoming = dict((await connection.execute(text(
                "SELECT state, count(*) FROM messages WHERE direction = 'incoming' "
                "GROUP BY state"))).all())
            outgoing = dict((await connection.execute(text(
                "SELECT state, count(*) FROM messages WHERE direction = 'outgoing' "
                "GROUP BY state"))).all())
            no_random_id = (await connection.execute(text(
                "SELECT count(*) FROM messages WHERE direction = 'outgoing' "
                "AND random_id IS NULL"))).scalar()
            events = (await connection.execute(text("SELECT count(*) FROM events"))).scalar()
        return {"replies": replies, "incoming": incoming, "outgoing": outgoing,
                "no_random_id": no_random_id, "events": events}

    statements: collections.Counter[str] = collections.Counter()

    def count_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        table = next((w for w in words[1:] if w.isidentifier() and w.upper() not in _SQL_WORDS),
                     "")
        statements[f"{words[0].upper()} {table}".strip()] += 1

    def engines() -> list[Any]:
        database = app[keys.DATABASE]
        found = [database.engine.sync_engine]
        runner_engine = getattr(getattr(database.repo, "_runner", None), "_engine", None)
        if runner_engine is not None and hasattr(runner_engine, "dialect"):
            found.append(getattr(runner_engine, "sync_engine", runner_engine))
        return list({id(e): e for e in found}.values())

    async def sql_start(_: str) -> dict[str, Any]:
        from sqlalchemy import event

        statements.clear()
        for engine in engines():
            event.listen(engine, "before_cursor_execute", count_statement)
            event.listen(engine, "commit", count_commit)
        return {}

    async def sql_end(_: str) -> dict[str, Any]:
        from sqlalchemy import event

        for engine in engines():
            event.remove(engine, "before_cursor_execute", count_statement)
            event.remove(engine, "commit", count_commit)
        return {"statements": dict(statements.most_common())}

    def count_commit(_conn: Any) -> None:
        statements["(transactions)"] += 1

    handlers = {**_profiling_handlers(config.get("cprofile")), "db_stats": db_stats,
                "sql_start": sql_start, "sql_end": sql_end}
    await _commands(handlers)
    await runner.cleanup()
    emit(done=True, hwm_kb=proc_status("VmHWM"), rss_kb=proc_status("VmRSS"), cpu=cpu_seconds())


_SQL_WORDS = {"INTO", "FROM", "OR", "IGNORE", "DISTINCT", "MIN", "MAX", "COUNT", "SET"}


def run_child(config_json: str) -> None:
    config = json.loads(config_json)
    if os.environ.get("BENCH_SWITCH_INTERVAL"):  # diagnosis only: GIL hand-over latency
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    os.environ["BENCH_LABEL"] = config["label"]
    if config["variant"] == "echo":
        asyncio.run(child_echo(config))
    else:
        if config["llm"] == "http-daemon":
            asyncio.run(_with_local_fake(config))
        else:
            asyncio.run(child_twin(config))


async def _with_local_fake(config: dict[str, Any]) -> None:
    from tests.providers.openai_fake import FakeOpenAI

    fake = FakeOpenAI()
    await fake.start()
    try:
        await child_twin({**config, "llm_base_url": fake.base_url + "/v1"})
    finally:
        await fake.stop()


# ================================================================================================
# The driver: sandbox, contacts, timing, checks.
# ================================================================================================


class Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def read(self, timeout: float = 60.0) -> dict[str, Any]:
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError("the child exited; see its log")
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(line)

    async def call(self, command: str) -> dict[str, Any]:
        self.proc.stdin.write((command + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read()

    async def stop(self) -> dict[str, Any]:
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        try:
            result = await self.read(timeout=30)
        finally:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 30)
        return result


async def login_through_api(server: Any, api_port: int) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{api_port}"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(base + "/auth/request_code", json={"phone": "+" + OWNER_PHONE}) as r:
            assert r.status == 200, await r.text()
        code = server.last_code(OWNER_PHONE)
        async with http.post(base + "/auth/verify_code",
                             json={"phone": "+" + OWNER_PHONE, "code": code}) as r:
            assert r.status == 200, await r.text()


async def run_variant(args: argparse.Namespace, variant: str, llm: str | None,
                      workdir: Path) -> dict[str, Any]:
    from tests.sandbox.server import SandboxServer

    label = variant if llm is None else f"{variant}-{llm}"
    tmp = workdir / label
    tmp.mkdir(parents=True, exist_ok=True)
    server = SandboxServer(fixed_code=FIXED_CODE)
    await server.start()
    fake = None
    child = None
    log_file = open(tmp / "child.log", "wb")  # noqa: SIM115
    try:
        owner = server.create_user(OWNER_PHONE, "Olga", "Owner", username="olga_owner")
        contacts = []
        for i in range(args.contacts + 1):  # the last one only warms up
            contact = server.create_user(f"1556{i:06d}", f"Contact{i}", username=f"contact{i}")
            server.add_contact(owner, contact)
            server.add_contact(contact, owner)
            contacts.append(contact)
        warm, contacts = contacts[-1], contacts[:-1]
        pem = server.write_public_key(tmp / "sandbox.pem")

        # --- the server-side clock on replies: a hook on this instance's world ------------------
        waiting: dict[int, asyncio.Future[float]] = {}
        replies_seen: collections.Counter[int] = collections.Counter()
        original = server.world.post_message

        def post_message(sender: Any, peer_key: int, **kwargs: Any) -> Any:
            copies = original(sender, peer_key, **kwargs)
            if sender.id == owner.id:
                now = time.perf_counter()
                replies_seen[peer_key] += 1
                future = waiting.pop(peer_key, None)
                if future is not None and not future.done():
                    future.set_result(now)
            return copies

        server.world.post_message = post_message  # type: ignore[method-assign]

        config: dict[str, Any] = {
            "variant": variant, "llm": llm, "label": label, "port": server.port,
            "dc_id": server.dc_id, "pem": str(pem), "tmp": str(tmp),
            "cprofile": str(args.cprofile) if args.cprofile else None,
        }
        if llm == "http":
            from tests.providers.openai_fake import FakeOpenAI

            fake = FakeOpenAI()
            await fake.start()
            config["llm_base_url"] = fake.base_url + "/v1"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
        child = Child(proc)
        ready = await child.read(timeout=120)
        if variant == "twin":
            await login_through_api(server, ready["api_port"])
        await server.wait_for(lambda: server.online_sessions(owner) >= 1, timeout=30)

        async def converse(contact: Any, count: int, tag: str, out: list[float]) -> None:
            for i in range(count):
                loop = asyncio.get_running_loop()
                future: asyncio.Future[float] = loop.create_future()
                waiting[contact.id] = future
                started = time.perf_counter()
                server.send_message(contact, owner, f"{tag} {i} from {contact.id}")
                try:
                    arrived = await asyncio.wait_for(future, REPLY_TIMEOUT)
                except TimeoutError:
                    waiting.pop(contact.id, None)
                    return  # the checks below report it
                out.append(arrived - started)

        await converse(warm, args.warmup, "warm-up", [])

        py_spy = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            py_spy = await asyncio.create_subprocess_exec(
                "py-spy", "record", "--pid", str(proc.pid), "--rate", "250", "--format", "raw",
                "--output", str(args.profile / f"{label}.txt"), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)  # let py-spy attach
        if args.sql and variant == "twin":
            await child.call("sql_start")
        cpu0 = (await child.call("mark_start"))["cpu"]
        latencies: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(
            *(converse(c, args.messages, "msg", latencies) for c in contacts)
        )
        wall = time.perf_counter() - t0
        end = await child.call("mark_end")
        cpu1 = end["cpu"]
        if args.threads:
            print(f"  {label} threads (user s, sys s, count): {end['threads']}")
        if args.sql and variant == "twin":
            counted = (await child.call("sql_end"))["statements"]
            total = sum(v for k, v in counted.items() if not k.startswith("("))
            replies = max(1, len(latencies))
            print(f"  {label}: {total / replies:.1f} SQL statements per reply:")
            for name, count in counted.items():
                print(f"    {count / replies:6.2f}  {name}")
        if py_spy is not None:
            py_spy.send_signal(signal.SIGINT)
            await py_spy.wait()

        # --- checks: exactly one reply per message, and the right one --------------------------
        await asyncio.sleep(args.grace)  # a duplicate would show up now
        expected_total = args.contacts * args.messages
        problems = []
        exact = 0
        for contact in contacts:
            sent = [f"msg {i} from {contact.id}" for i in range(args.messages)]
            got = server.messages_from(owner, contact)
            if got == [f"echo: {text}" for text in sent]:
                exact += 1
            elif len(problems) < 5:
                problems.append(f"contact {contact.id}: {len(got)} replies, e.g. {got[:2]}")
        db = await child.call("db_stats") if variant == "twin" else None
        done = await child.stop()
        child = None
        return {
            "label": label, "latencies": latencies, "wall": wall,
            "replies": sum(replies_seen[c.id] for c in contacts), "expected": expected_total,
            "exact_contacts": exact, "problems": problems, "db": db,
            "hwm_kb": done["hwm_kb"], "ready_rss_kb": ready["rss_kb"],
            "cpu": cpu1 - cpu0, "server_errors": list(server.internal_errors),
            "log": str(tmp / "child.log"),
        }
    finally:
        if child is not None:
            child.proc.kill()
            await child.proc.wait()
        log_file.close()
        if fake is not None:
            await fake.stop()
        await server.stop()


def summarise_py_spy(path: Path, top: int = 25) -> None:
    """Self and inclusive sample shares by function from py-spy's collapsed stacks."""
    if not path.exists():
        return
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"\n  py-spy {path.name}: {total} samples")
    print("  self:")
    for frame, count in own.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame}")
    print("  inclusive (twin/, sqlalchemy, telethon, openai, aiosqlite frames):")
    keep = ("twin/", "sqlalchemy", "telethon", "openai", "aiosqlite", "httpx", "aiohttp")
    shown = 0
    for frame, count in inclusive.most_common():
        if any(k in frame for k in keep):
            print(f"    {100 * count / total:5.1f}%  {frame}")
            shown += 1
            if shown >= top:
                break


def print_table(results: list[dict[str, Any]]) -> None:
    base = next((r for r in results if r["label"] == "echo"), None)
    head = (f"{'variant':<14}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'replies/s':>11}"
            f"{'p50 vs echo':>13}{'rps b/a':>9}{'CPU ms/reply':>14}{'peak RSS MB':>13}"
            f"{'check':>10}")
    print()
    print(head)
    print("-" * len(head))
    for r in results:
        lat = r["latencies"]
        if not lat:
            print(f"{r['label']:<14} no replies")
            continue
        p50, p99 = statistics.median(lat) * 1e3, percentile(lat, 99) * 1e3
        rps = len(lat) / r["wall"]
        if base is not None and base["latencies"] and r is not base:
            b50 = statistics.median(base["latencies"]) * 1e3
            brps = len(base["latencies"]) / base["wall"]
            vs = f"+{p50 - b50:.2f} ({p50 / b50:.1f}x)"
            ratio = f"{rps / brps:.2f}"
        else:
            vs, ratio = "-", "-"
        ok = r["replies"] == r["expected"] and r["exact_contacts"] * 0 == 0 and not r["problems"]
        check = "OK" if ok and len(lat) == r["expected"] else "FAIL"
        print(f"{r['label']:<14}{p50:>9.2f}{p99:>9.2f}{max(lat) * 1e3:>9.1f}{rps:>11.0f}"
              f"{vs:>13}{ratio:>9}{r['cpu'] / max(1, len(lat)) * 1e3:>14.2f}"
              f"{r['hwm_kb'] / 1024:>13.1f}{check:>10}")
    print()
    for r in results:
        print(f"{r['label']}: {len(r['latencies'])}/{r['expected']} answered, "
              f"{r['replies']} replies seen by the server, {r['exact_contacts']} contacts got "
              f"exactly one matching reply per message; RSS after start-up "
              f"{r['ready_rss_kb'] / 1024:.1f} MB, peak {r['hwm_kb'] / 1024:.1f} MB; "
              f"daemon CPU {r['cpu']:.2f} s over {r['wall']:.2f} s wall")
        if r["db"]:
            print(f"  db: replies {r['db']['replies']}, incoming {r['db']['incoming']}, "
                  f"outgoing {r['db']['outgoing']}, bubbles without random_id "
                  f"{r['db']['no_random_id']}, events {r['db']['events']}")
        for problem in r["problems"]:
            print(f"  PROBLEM {problem}")
        if r["server_errors"]:
            print(f"  sandbox internal errors: {r['server_errors'][:3]}")


async def drive(args: argparse.Namespace) -> None:
    from tests.sandbox import server as sandbox_server  # noqa: F401 (fail early if missing)

    variants: list[tuple[str, str | None]] = []
    for variant in args.variants.split(","):
        if variant == "echo":
            variants.append(("echo", None))
        else:
            variants.extend(("twin", llm) for llm in args.llm.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="twin-bench-"))
    results = []
    try:
        for variant, llm in variants:
            result = await run_variant(args, variant, llm, workdir)
            results.append(result)
            lat = result["latencies"]
            print(f"{result['label']}: {len(lat)} replies in {result['wall']:.2f} s"
                  + (f", p50 {statistics.median(lat) * 1e3:.2f} ms" if lat else ""), flush=True)
            if args.keep_logs:
                print(f"  log: {result['log']}")
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.contacts} contacts x {args.messages} messages, conversation style "
          f"(next message after the previous reply), all contacts at once; "
          f"{os.cpu_count()} CPUs; latency = contact's send -> reply stored by the sandbox")
    print_table(results)
    if args.profile:
        for result in results:
            summarise_py_spy(args.profile / f"{result['label']}.txt")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{k: v for k, v in r.items() if k != "latencies"}
             | {"p50_ms": statistics.median(r["latencies"]) * 1e3 if r["latencies"] else None,
                "p99_ms": percentile(r["latencies"], 99) * 1e3 if r["latencies"] else None,
                "rps": len(r["latencies"]) / r["wall"]}
             for r in results], indent=2))
    if any(r["problems"] or len(r["latencies"]) != r["expected"] for r in results):
        sys.exit(1)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="messages from a warm-up contact")
    parser.add_argument("--variants", default="echo,twin", help="comma-separated: echo,twin")
    parser.add_argument("--llm", default="http,inproc",
                        help="twin LLM modes: http (FakeOpenAI in the driver process), inproc "
                             "(real Brain, in-process LLM port), http-daemon (FakeOpenAI "
                             "inside the daemon process)")
    parser.add_argument("--grace", type=float, default=1.0,
                        help="seconds to wait for stray duplicates before checking")
    parser.add_argument("--profile", type=Path, help="py-spy the daemon child into this dir")
    parser.add_argument("--cprofile", type=Path, help="cProfile the child into this dir")
    parser.add_argument("--sql", action="store_true", help="count SQL statements per reply")
    parser.add_argument("--threads", action="store_true", help="print per-thread CPU")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    if args.cprofile:
        args.cprofile.mkdir(parents=True, exist_ok=True)
        args.cprofile = args.cprofile.resolve()
    asyncio.run(drive(args))


if __name__ == "__main__":
    main()
