"""The daemon's hot path over the sandbox: a bare Telethon echo vs the full twin.

    python bench/pipeline.py [--contacts 100] [--messages 20] [--single 10]
                             [--variants echo,twin] [--llm http,inproc] [--json FILE]
    diagnosis: [--profile DIR [--gil]] [--cprofile DIR] [--sql] [--threads] [--db-busy]

Two phases per variant, both conversation style (a contact sends its next message only once the
reply to the previous one has arrived):

  single  `--single` contacts one after the other, `--messages` messages each: the latency of
          one reply when nothing else is going on (what "the twin adds N ms over a bare echo"
          means), in conversations as long as the load phase's.
  load    `--contacts` contacts x `--messages` messages, all contacts at once: throughput
          (replies per second) and the latency under that load (mostly queueing: about
          contacts in flight / replies per second).

Contacts have no clients: the driver posts their messages with the sandbox's `send_message`
(server side). A reply's latency is the time from that send to the moment the sandbox stores
the owner's reply, taken by a hook on this server instance's `world.post_message`: measured
inside the server, not by a client.

Variants, each in its own subprocess so that its peak RSS (VmHWM) and CPU time are the answering
process's own, not the sandbox's or the driver's:

  echo         one TelegramClient for the owner, `events.NewMessage(incoming=True)` → respond.
  twin-http    the real daemon (create_app, served on loopback, the owner logged in through
               the API), with the real openai SDK talking to FakeOpenAI (zero latency) in the
               driver process: over loopback HTTP, as a real provider would be.
  twin-inproc  the same daemon with the real Brain over an in-process LLM port (no HTTP): what
               is left without the openai SDK and its HTTP round trip.
  (twin-http-daemon: FakeOpenAI inside the daemon's process, as the e2e tests run it.)

Zero human delays: `humanize.enabled = false`, debounce 0, always open, rate limits and the
safety governor's buckets out of reach (1,000,000 an hour: every reply of the run counts
against them; the governor still admits and counts every call), no daily send budget. SQLite
(the default) in a temporary directory. Checked afterwards: every message got exactly one
reply, the reply to *that* message (the fakes echo it); for the twin also the stored states
(every job `sent`, every bubble with its random_id).

Diagnosis: `--profile DIR` samples the daemon with py-spy during the load phase (`--gil`: only
the thread holding the GIL) and summarises it; `--cprofile DIR` runs cProfile in the child
(event-loop thread only); `--sql` counts SQL statements and transactions per reply;
`--threads` prints CPU per thread; `--db-busy` how busy the database thread was.
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

SCRIPT = str(Path(__file__).resolve())
ROOT = Path(SCRIPT).parents[1]
sys.path.insert(0, str(ROOT))

FIXED_CODE = "24680"
OWNER_PHONE = "15550100"
TOKEN = "bench-token-0123456789abcdef"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REPLY_TIMEOUT = 60.0
RATE_LIMIT = 1_000_000


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
    """[user s, system s] per thread id ("main" for the event loop's thread)."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: dict[str, list[float]] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            name = "main" if task.name == str(os.getpid()) else task.name
            result[name] = [int(fields[11]) / ticks, int(fields[12]) / ticks]
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

    async def complete(
        self, messages: Any, *, json_schema: Any = None, max_tokens: int, temperature: float
    ) -> Any:
        from tests.providers.openai_fake import brain_json, last_user_line
        from twin.brain.port import Completion

        plain = [{"role": m.role, "content": m.content} for m in messages]
        text = json.dumps(brain_json(f"echo: {last_user_line(plain)[:200]}"), ensure_ascii=False)
        prompt = sum(len(m.content) for m in messages) // 4
        return Completion(
            text=text, prompt_tokens=prompt, completion_tokens=len(text) // 4,
            model=self.model, provider=self.provider, finish_reason="stop",
        )


async def _serve_commands(handlers: dict[str, Any]) -> None:
    """Answer the driver's line commands on stdin (one JSON line each) until "stop"."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            return
        handler = handlers.get(line)
        emit(reply=line, **((await handler()) if handler else {"error": f"unknown {line}"}))


def _measuring(config: dict[str, Any]) -> dict[str, Any]:
    """mark_start / mark_end around the load phase: CPU time, garbage collections (count and
    time per generation), and cProfile if asked."""
    import gc

    state: dict[str, Any] = {}
    collections_ = {generation: [0, 0.0] for generation in range(3)}
    began: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began.append(time.perf_counter())
        elif began:
            entry = collections_[info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - began.pop()

    async def start() -> dict[str, Any]:
        for entry in collections_.values():
            entry[:] = [0, 0.0]
        gc.callbacks.append(on_gc)
        if config.get("cprofile"):
            import cProfile

            state["profile"] = cProfile.Profile()
            state["profile"].enable()
        return {"cpu": cpu_seconds()}

    async def end() -> dict[str, Any]:
        cpu = cpu_seconds()
        gc.callbacks.remove(on_gc)
        if "profile" in state:
            state["profile"].disable()
            state["profile"].dump_stats(Path(config["cprofile"]) / f"{config['label']}.prof")
        return {"cpu": cpu, "threads": thread_cpu(), "gc": collections_}

    return {"mark_start": start, "mark_end": end}


async def child_echo(config: dict[str, Any], pem: str) -> None:
    from telethon import TelegramClient, events
    from telethon.crypto import rsa
    from telethon.sessions import StringSession

    rsa.add_key(pem, old=False)
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
    await _serve_commands(_measuring(config))
    await client.disconnect()
    emit(done=True, hwm_kb=proc_status("VmHWM"), rss_kb=proc_status("VmRSS"), cpu=cpu_seconds())


def twin_settings(config: dict[str, Any]) -> Any:
    from twin.config import load_settings

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
        "storage": {
            "url": config.get("storage_url") or f"sqlite+aiosqlite:///{config['tmp']}/twin.db"
        },
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
            "max_replies_per_chat_per_hour": config["rate_limit"],
            "max_replies_per_account_per_hour": config["rate_limit"],
        },
        "schedule": {"hours": {day: ["00:00-24:00"] for day in DAYS}},
        "humanize": {"enabled": False},
        # The governor still sees every call (its cost is measured), its limits out of reach.
        "safety": {
            "sends_per_hour": config["rate_limit"],
            "sends_burst": config["rate_limit"],
            "history_per_hour": config["rate_limit"],
            "history_burst": config["rate_limit"],
            "daily_sends": 0,
        },
        "logging": {"level": "INFO"},
    }
    return load_settings(None, **sections)


def _sql_counter(app: Any) -> dict[str, Any]:
    """sql_start / sql_end: statements (by verb and table) and commits on every engine."""
    from sqlalchemy import event

    from twin import keys

    counted: collections.Counter[str] = collections.Counter()
    skip = {"INTO", "FROM", "OR", "IGNORE", "DISTINCT", "MIN", "MAX", "COUNT", "SET"}

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        table = next((w for w in words[1:] if w.isidentifier() and w.upper() not in skip), "")
        counted[f"{words[0].upper()} {table}".strip()] += 1

    def on_commit(_conn: Any) -> None:
        counted["(transactions)"] += 1

    def runner() -> Any:
        return getattr(app[keys.DATABASE].repo, "_runner", None)

    def engines() -> list[Any]:
        """Engines whose statements SQLAlchemy sees (the event loop's connection is traced
        by sqlite3 instead: twin.db.lean runs most of its statements past SQLAlchemy)."""
        found = [app[keys.DATABASE].engine.sync_engine]
        engine = getattr(runner(), "_engine", None)
        if engine is not None and hasattr(engine, "dialect"):
            found.append(getattr(engine, "sync_engine", engine))
        return list({id(engine): engine for engine in found}.values())

    def inline_driver() -> Any:
        connection = getattr(runner(), "_inline_connection", None)
        return None if connection is None else connection.connection.driver_connection

    def on_traced(statement: str) -> None:
        if statement.split(None, 1)[0].upper() == "COMMIT":
            on_commit(None)
        elif statement.split(None, 1)[0].upper() not in ("BEGIN", "ROLLBACK"):
            on_statement(None, None, statement)

    async def start() -> dict[str, Any]:
        counted.clear()
        for engine in engines():
            event.listen(engine, "before_cursor_execute", on_statement)
            event.listen(engine, "commit", on_commit)
        if inline_driver() is not None:
            inline_driver().set_trace_callback(on_traced)
        return {}

    async def end() -> dict[str, Any]:
        for engine in engines():
            event.remove(engine, "before_cursor_execute", on_statement)
            event.remove(engine, "commit", on_commit)
        if inline_driver() is not None:
            inline_driver().set_trace_callback(None)
        return {"statements": dict(counted.most_common())}

    return {"sql_start": start, "sql_end": end}


def _db_busy(app: Any) -> dict[str, Any]:
    """db_busy: units of work since the last call (on the event loop / in the database
    thread), and the time spent in them (wall and CPU)."""
    from twin import keys

    runner = getattr(app[keys.DATABASE].repo, "_runner", None)  # None: an older repository
    busy = {"inline": 0, "thread": 0, "wall": 0.0, "cpu": 0.0}

    def timed(kind: str, run: Any) -> Any:
        def call(work: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return run(work)
            finally:
                busy["wall"] += time.perf_counter() - wall
                busy["cpu"] += time.thread_time() - cpu
                busy[kind] += 1

        return call

    callers: collections.Counter[str] = collections.Counter()
    run = getattr(runner, "run", None)

    async def counted_run(work: Any) -> Any:
        callers[getattr(work, "__qualname__", "?").split(".<locals>")[0]] += 1
        return await run(work)

    if run is not None:
        runner.run = counted_run
    if hasattr(runner, "_transaction"):
        runner._transaction = timed("thread", runner._transaction)
        inline_engine = runner._inline_engine
        if inline_engine is not None:
            original_begin = inline_engine.begin

            @contextlib.contextmanager
            def begin() -> Any:
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    with original_begin() as connection:
                        yield connection
                finally:
                    busy["wall"] += time.perf_counter() - wall
                    busy["cpu"] += time.thread_time() - cpu
                    busy["inline"] += 1

            inline_engine.begin = begin

    async def report() -> dict[str, Any]:
        result = {**busy, "callers": dict(callers.most_common(8))}
        busy.update(inline=0, thread=0, wall=0.0, cpu=0.0)
        callers.clear()
        return result

    return {"db_busy": report}


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
    web_runner = web.AppRunner(app)
    await web_runner.setup()
    site = web.TCPSite(web_runner, "127.0.0.1", 0)
    await site.start()
    api_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emit(ready=True, api_port=api_port, rss_kb=proc_status("VmRSS"))

    async def db_stats() -> dict[str, Any]:
        def by_state(where: str) -> Any:
            return text(f"SELECT state, count(*) FROM {where} GROUP BY state")

        async with app[keys.DATABASE].engine.connect() as connection:
            return {
                "replies": dict((await connection.execute(by_state("replies"))).all()),
                "incoming": dict((await connection.execute(
                    by_state("messages WHERE direction = 'incoming'"))).all()),
                "outgoing": dict((await connection.execute(
                    by_state("messages WHERE direction = 'outgoing'"))).all()),
                "no_random_id": (await connection.execute(text(
                    "SELECT count(*) FROM messages WHERE direction = 'outgoing' "
                    "AND random_id IS NULL"))).scalar(),
                "events": (await connection.execute(text("SELECT count(*) FROM events"))).scalar(),
            }

    handlers = {**_measuring(config), **_sql_counter(app), "db_stats": db_stats}
    if config.get("db_busy"):  # wraps the runner: only when asked for
        handlers.update(_db_busy(app))
    await _serve_commands(handlers)
    await web_runner.cleanup()
    emit(done=True, hwm_kb=proc_status("VmHWM"), rss_kb=proc_status("VmRSS"), cpu=cpu_seconds())


async def _with_local_fake(config: dict[str, Any]) -> None:
    from tests.providers.openai_fake import FakeOpenAI

    fake = FakeOpenAI()
    await fake.start()
    try:
        await child_twin({**config, "llm_base_url": fake.base_url + "/v1"})
    finally:
        await fake.stop()


def run_child(config_json: str) -> None:
    config = json.loads(config_json)
    if config["variant"] == "echo":
        asyncio.run(child_echo(config, Path(config["pem"]).read_text()))
    elif config["llm"] == "http-daemon":
        asyncio.run(_with_local_fake(config))
    else:
        asyncio.run(child_twin(config))


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
                raise RuntimeError("the child exited; run with --keep-logs and see its log")
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
            return await self.read(timeout=30)
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 30)


async def login_through_api(server: Any, api_port: int) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{api_port}"
    async with aiohttp.ClientSession(headers=headers) as http:
        phone = {"phone": "+" + OWNER_PHONE}
        async with http.post(base + "/auth/request_code", json=phone) as response:
            assert response.status == 200, await response.text()
        code = {**phone, "code": server.last_code(OWNER_PHONE)}
        async with http.post(base + "/auth/verify_code", json=code) as response:
            assert response.status == 200, await response.text()


class Conversations:
    """Contacts talking to the owner through the sandbox; the owner's replies are timed by a
    hook on the server's message store (`world.post_message` of this server instance)."""

    def __init__(self, server: Any, owner: Any) -> None:
        self.server = server
        self.owner = owner
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.replies: collections.Counter[int] = collections.Counter()
        store = server.world.post_message

        def post_message(sender: Any, peer_key: int, **kwargs: Any) -> Any:
            copies = store(sender, peer_key, **kwargs)
            if sender.id == owner.id:
                arrived = time.perf_counter()
                self.replies[peer_key] += 1
                future = self.waiting.pop(peer_key, None)
                if future is not None and not future.done():
                    future.set_result(arrived)
            return copies

        server.world.post_message = post_message

    async def converse(self, contact: Any, count: int, tag: str, out: list[float]) -> None:
        """`count` messages, each sent once the previous one is answered; latencies to `out`."""
        loop = asyncio.get_running_loop()
        for i in range(count):
            future: asyncio.Future[float] = loop.create_future()
            self.waiting[contact.id] = future
            started = time.perf_counter()
            self.server.send_message(contact, self.owner, f"{tag} {i} from {contact.id}")
            try:
                arrived = await asyncio.wait_for(future, REPLY_TIMEOUT)
            except TimeoutError:
                self.waiting.pop(contact.id, None)
                return  # the checks report it
            out.append(arrived - started)

    def check(self, contact: Any, *conversations: tuple[str, int]) -> str | None:
        """None if `contact` got exactly one reply per message of its (tag, count)
        conversations, in order, each answering that message."""
        got = self.server.messages_from(self.owner, contact)
        wanted = [
            f"echo: {tag} {i} from {contact.id}" for tag, count in conversations
            for i in range(count)
        ]
        if got == wanted:
            return None
        pairs = enumerate(zip(got, wanted, strict=False))
        first = next((i for i, (a, b) in pairs if a != b), None)
        where = "" if first is None else f"; #{first}: {got[first]!r}, not {wanted[first]!r}"
        return f"contact {contact.id}: {len(got)} replies for {len(wanted)} messages{where}"


async def run_variant(
    args: argparse.Namespace, variant: str, llm: str | None, workdir: Path
) -> dict[str, Any]:
    from twin.sandbox.server import SandboxServer

    label = variant if llm is None else f"{variant}-{llm}"
    tmp = workdir / label
    tmp.mkdir(parents=True, exist_ok=True)
    server = SandboxServer(fixed_code=FIXED_CODE)
    await server.start()
    fake = child = py_spy = None
    log_file = (tmp / "child.log").open("wb")
    try:
        owner = server.create_user(OWNER_PHONE, "Olga", "Owner", username="olga_owner")
        people = []
        for i in range(1 + args.single + args.contacts):
            contact = server.create_user(f"1556{i:06d}", f"Contact{i}", username=f"contact{i}")
            server.add_contact(owner, contact)
            server.add_contact(contact, owner)
            people.append(contact)
        warm, solos, contacts = people[0], people[1 : 1 + args.single], people[1 + args.single :]
        pem = server.write_public_key(tmp / "sandbox.pem")
        talk = Conversations(server, owner)

        config: dict[str, Any] = {
            "variant": variant, "llm": llm, "label": label, "port": server.port,
            "dc_id": server.dc_id, "pem": str(pem), "tmp": str(tmp),
            "cprofile": str(args.cprofile) if args.cprofile else None,
            "rate_limit": args.rate_limit,
            "storage_url": args.storage_url,
            "db_busy": args.db_busy,
        }
        if llm == "http":
            from tests.providers.openai_fake import FakeOpenAI

            fake = FakeOpenAI()
            await fake.start()
            config["llm_base_url"] = fake.base_url + "/v1"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, SCRIPT, "--child", json.dumps(config),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
        child = Child(proc)
        ready = await child.read(timeout=120)
        if variant == "twin":
            await login_through_api(server, ready["api_port"])
        await server.wait_for(lambda: server.online_sessions(owner) >= 1, timeout=30)

        # --- single: one conversation, nothing else going on ---------------------------------
        single: list[float] = []
        await talk.converse(warm, args.warmup, "warm-up", [])
        for solo in solos:
            await talk.converse(solo, args.messages, "single", single)

        # --- load: every contact at once -----------------------------------------------------
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            py_spy = await asyncio.create_subprocess_exec(
                "py-spy", "record", "--pid", str(proc.pid), "--rate", "250", "--format", "raw",
                *(["--gil"] if args.gil else []), "--nonblocking",
                "--output", str(args.profile / f"{label}.txt"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)  # let py-spy attach
        twin = variant == "twin"
        if twin:
            if args.db_busy:
                await child.call("db_busy")
            if args.sql:
                await child.call("sql_start")
        cpu0 = (await child.call("mark_start"))["cpu"]
        load: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(talk.converse(c, args.messages, "msg", load) for c in contacts))
        wall = time.perf_counter() - started
        end = await child.call("mark_end")
        diagnosis = {"threads": end["threads"], "gc": end["gc"]}
        if twin:
            if args.db_busy:
                diagnosis["db_busy"] = await child.call("db_busy")
            if args.sql:
                diagnosis["sql"] = (await child.call("sql_end"))["statements"]
        if py_spy is not None:
            py_spy.send_signal(signal.SIGINT)
            await py_spy.wait()

        # --- checks: exactly one reply per message, the right one ----------------------------
        await asyncio.sleep(args.grace)  # a late duplicate would show up now
        problems = [
            problem
            for problem in (
                talk.check(warm, ("warm-up", args.warmup)),
                *(talk.check(c, ("single", args.messages)) for c in solos),
                *(talk.check(c, ("msg", args.messages)) for c in contacts),
            )
            if problem
        ]
        if len(single) + len(load) != (args.single + args.contacts) * args.messages:
            problems.append(f"unanswered: {args.single * args.messages - len(single)} single, "
                            f"{args.contacts * args.messages - len(load)} load")
        db = await child.call("db_stats") if twin else None
        if db is not None:
            total = args.warmup + (args.single + args.contacts) * args.messages
            if db["replies"] != {"sent": total} or db["incoming"] != {"sent": total} \
                    or db["outgoing"] != {"sent": total} or db["no_random_id"]:
                problems.append(f"stored states: {db}")
        done = await child.stop()
        child = None
        return {
            "label": label, "single": single, "load": load, "wall": wall,
            "replies": sum(talk.replies.values()) - args.warmup,
            "expected": (args.single + args.contacts) * args.messages,
            "problems": problems, "db": db, "diagnosis": diagnosis,
            "hwm_kb": done["hwm_kb"], "ready_rss_kb": ready["rss_kb"],
            "cpu": end["cpu"] - cpu0, "server_errors": list(server.internal_errors),
            "log": str(tmp / "child.log"),
        }
    finally:
        if py_spy is not None and py_spy.returncode is None:
            py_spy.kill()
            await py_spy.wait()
        if child is not None and child.proc.returncode is None:
            child.proc.kill()
            await child.proc.wait()
        log_file.close()
        if fake is not None:
            await fake.stop()
        await server.stop()


# --- reporting ----------------------------------------------------------------------------------


def summarise_py_spy(path: Path, top: int = 20) -> None:
    """Where the samples went: by component, and the hottest functions."""
    if not path.exists():
        return
    parts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        leaves[frames[-1]] += count
        parts[_component(frames)] += count
    print(f"\n  py-spy {path.name}: {total} samples")
    for name, count in parts.most_common():
        print(f"    {100 * count / total:5.1f}%  {name}")
    print("  hottest functions (self):")
    for frame, count in leaves.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame}")


def _component(frames: list[str]) -> str:
    """The innermost recognisable component of a stack."""
    if frames[0].startswith("Thread._bootstrap"):
        return "database thread (SQLAlchemy + sqlite3)"
    if "select (selectors" in frames[-1]:
        return "event loop idle (epoll)"
    for frame in reversed(frames):
        for needle, name in (
            ("sqlalchemy/", "database: SQLAlchemy + sqlite3 (units of work on the event loop)"),
            ("twin/db/", "database: SQLAlchemy + sqlite3 (units of work on the event loop)"),
            ("openai/", "openai SDK + httpx"),
            ("httpx/", "openai SDK + httpx"),
            ("twin/domain/tokens.py", "brain: token estimates while building the prompt"),
            ("twin/domain/prompts.py", "brain: token estimates while building the prompt"),
            ("twin/brain/", "brain: other"),
            ("telethon/network", "telethon: network (encryption, framing)"),
            ("telethon/", "telethon: updates, entities, requests"),
            ("twin/", "twin: pipeline, intake, adapters, events"),
            ("aiohttp/", "aiohttp"),
        ):
            if needle in frame:
                return name
    return "asyncio and other"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def print_report(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    print(f"\nsingle: {args.single} contacts one after the other; load: {args.contacts} contacts "
          f"all at once; {args.messages} messages each, conversation style; {os.cpu_count()} "
          "CPUs; latency = contact's send -> reply stored by the sandbox")
    head = (f"{'variant':<13}{'single p50':>11}{'p99':>8}{'load p50':>10}{'p99':>9}"
            f"{'replies/s':>11}{'CPU ms/reply':>14}{'peak RSS MB':>13}{'check':>7}")
    print(head)
    print("-" * len(head))
    for r in results:
        if not r["single"] or not r["load"]:
            print(f"{r['label']:<13} no replies")
            continue
        check = "FAIL" if r["problems"] else "OK"
        print(f"{r['label']:<13}{_ms(statistics.median(r['single'])):>11}"
              f"{_ms(percentile(r['single'], 99)):>8}{_ms(statistics.median(r['load'])):>10}"
              f"{_ms(percentile(r['load'], 99)):>9}{len(r['load']) / r['wall']:>11.0f}"
              f"{r['cpu'] / len(r['load']) * 1e3:>14.2f}{r['hwm_kb'] / 1024:>13.1f}{check:>7}")
    base = next((r for r in results if r["label"] == "echo" and r["single"]), None)
    if base is not None:
        print()
        for r in results:
            if r is base or not r["single"] or not r["load"]:
                continue
            p50, base_p50 = statistics.median(r["single"]), statistics.median(base["single"])
            rate = len(r["load"]) / r["wall"]
            base_rate = len(base["load"]) / base["wall"]
            print(f"{r['label']} / echo: single p50 +{_ms(p50 - base_p50)} ms "
                  f"({p50 / base_p50:.1f}x); replies/s x{rate / base_rate:.3f}")
    print()
    for r in results:
        print(f"{r['label']}: {r['replies']} replies for {r['expected']} messages; "
              f"{'every message got exactly one reply, its own' if not r['problems'] else 'FAILED'}"
              f"; RSS {r['ready_rss_kb'] / 1024:.1f} MB after start-up, peak "
              f"{r['hwm_kb'] / 1024:.1f} MB; CPU {r['cpu']:.2f} s in {r['wall']:.2f} s of load")
        if r["db"]:
            db = r["db"]
            print(f"  stored: replies {db['replies']}, incoming {db['incoming']}, outgoing "
                  f"{db['outgoing']}, bubbles without random_id {db['no_random_id']}, "
                  f"events {db['events']}")
        for problem in r["problems"]:
            print(f"  PROBLEM {problem}")
        if r["server_errors"]:
            print(f"  sandbox internal errors: {r['server_errors'][:3]}")
        _print_diagnosis(args, r)


def _print_diagnosis(args: argparse.Namespace, r: dict[str, Any]) -> None:
    diagnosis, replies = r["diagnosis"], max(1, len(r["load"]))
    if args.threads:
        print(f"  CPU by thread since start-up [user s, sys s]: {diagnosis['threads']}")
    collected = diagnosis.get("gc") or {}
    gc_seconds = sum(seconds for _, seconds in collected.values())
    print("  garbage collection during the load: "
          + ", ".join(f"gen{gen} {count}x {seconds * 1e3:.0f} ms"
                      for gen, (count, seconds) in sorted(collected.items()))
          + f" ({gc_seconds / replies * 1e3:.2f} ms per reply)")
    busy = diagnosis.get("db_busy")
    units = (busy or {}).get("inline", 0) + (busy or {}).get("thread", 0)
    if args.db_busy and units:
        print(f"  units of work per reply: {busy['inline'] / replies:.2f} on the event loop, "
              f"{busy['thread'] / replies:.2f} in the database thread; "
              f"{busy['wall'] / units * 1e3:.2f} ms wall and {busy['cpu'] / units * 1e3:.2f} ms "
              f"CPU each, {busy['wall'] / r['wall']:.0%} of the load phase in all")
        if busy["callers"]:
            print(f"  in the thread: {busy['callers']}")
    counted = diagnosis.get("sql")
    if counted:
        statements = sum(v for k, v in counted.items() if not k.startswith("("))
        print(f"  SQL per reply: {statements / replies:.1f} statements, "
              f"{counted.get('(transactions)', 0) / replies:.1f} transactions")
        for name, count in counted.items():
            if count / replies >= 0.05 and not name.startswith("("):
                print(f"    {count / replies:6.2f}  {name}")


async def drive(args: argparse.Namespace) -> None:
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
            log = f" (log: {result['log']})" if args.keep_logs else ""
            print(f"{result['label']}: done, {len(result['load'])} replies under load in "
                  f"{result['wall']:.2f} s{log}", flush=True)
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(args, results)
    if args.profile:
        for result in results:
            summarise_py_spy(args.profile / f"{result['label']}.txt")
    if args.json:
        summary = []
        for r in results:
            item = {k: v for k, v in r.items() if k not in ("single", "load")}
            for phase in ("single", "load"):
                if r[phase]:
                    item[f"{phase}_p50_ms"] = statistics.median(r[phase]) * 1e3
                    item[f"{phase}_p99_ms"] = percentile(r[phase], 99) * 1e3
            item["replies_per_s"] = len(r["load"]) / r["wall"] if r["load"] else 0
            summary.append(item)
        with open(args.json, "w") as out:  # noqa: ASYNC230 (once, at the end)
            json.dump(summary, out, indent=2)
    if any(r["problems"] for r in results):
        sys.exit(1)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--single", type=int, default=10,
                        help="contacts of the single phase (one at a time)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured first messages")
    parser.add_argument("--variants", default="echo,twin", help="comma-separated: echo,twin")
    parser.add_argument(
        "--llm", default="http,inproc",
        help="the twin's LLM: http (FakeOpenAI in the driver process), inproc (real Brain, "
        "in-process LLM port), http-daemon (FakeOpenAI inside the daemon's process)",
    )
    parser.add_argument("--storage-url", help="instead of a temporary SQLite file (must be an "
                        "empty or migrated database of its own)")
    parser.add_argument("--rate-limit", type=int, default=RATE_LIMIT,
                        help="replies per chat and per account per hour")
    parser.add_argument("--grace", type=float, default=1.0,
                        help="seconds to wait for stray duplicates before checking")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    parser.add_argument("--profile", type=Path, help="py-spy the answering process into DIR")
    parser.add_argument("--gil", action="store_true", help="py-spy: only the GIL holder")
    parser.add_argument("--cprofile", type=Path, help="cProfile the child into DIR")
    parser.add_argument("--sql", action="store_true", help="count SQL per reply")
    parser.add_argument("--threads", action="store_true", help="print CPU per thread")
    parser.add_argument("--db-busy", action="store_true", help="database thread utilisation")
    args = parser.parse_args()
    if args.cprofile:
        args.cprofile.mkdir(parents=True, exist_ok=True)
        args.cprofile = args.cprofile.resolve()
    asyncio.run(drive(args))


if __name__ == "__main__":
    main()
