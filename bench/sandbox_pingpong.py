"""Telethon ping-pong between two clients over the sandbox MTProto server.

    python bench/sandbox_pingpong.py [--rounds 1000] [--burst 2000] [--spawn]

Phase 1 (latency): Alice sends "ping i", Bob's NewMessage handler replies, Alice waits for
the reply event: p50/p95/p99 round-trip times and messages per second (2 per round).
Phase 2 (throughput): Alice sends a burst with up to --window sends in flight; Bob counts
NewMessage events: delivered messages per second.

By default the server runs in this process and the share of wall time it spent handling
frames is printed ("server busy"), which shows whether the server or the clients are the
bottleneck. With --spawn the server runs as `python -m twin.sandbox` in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telethon import TelegramClient, events, functions  # noqa: E402
from telethon.crypto import rsa  # noqa: E402
from telethon.sessions import StringSession  # noqa: E402

from twin.sandbox.client import API_HASH, API_ID, signed_in_client  # noqa: E402
from twin.sandbox.server import SandboxServer  # noqa: E402

ALICE, BOB = "15559001", "15559002"
FIXED_CODE = "24680"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _spawned_clients(tmp: Path) -> tuple[asyncio.subprocess.Process, list[TelegramClient]]:
    key = tmp / "sandbox.pem"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twin.sandbox", "--port", "0", "--key-out", str(key),
        "--fixed-code", FIXED_CODE, "--user", f"{ALICE}:Alice:alice", "--user", f"{BOB}:Bob:bob",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    port = int((await proc.stdout.readline()).decode().strip().removeprefix("port="))
    rsa.add_key(key.read_text(), old=False)
    clients = []
    for phone in (ALICE, BOB):
        session = StringSession()
        session.set_dc(2, "127.0.0.1", port)
        client = TelegramClient(session, API_ID, API_HASH)
        await client.connect()
        await client.send_code_request(phone)
        await client.sign_in(phone, FIXED_CODE)
        clients.append(client)
    return proc, clients


async def run(args: argparse.Namespace) -> None:
    server = proc = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.spawn:
            proc, (a, b) = await _spawned_clients(Path(tmp))
        else:
            server = SandboxServer()
            await server.start()
            server.create_user(ALICE, "Alice", username="alice")
            server.create_user(BOB, "Bob", username="bob")
            a = await signed_in_client(server, ALICE)
            b = await signed_in_client(server, BOB)
        try:
            await bench(args, a, b, server)
        finally:
            await a.disconnect()
            await b.disconnect()
            if server is not None:
                await server.stop()
            if proc is not None:
                proc.terminate()
                await proc.wait()


async def bench(args: argparse.Namespace, a: TelegramClient, b: TelegramClient,
                server: SandboxServer | None) -> None:
    bob = await a.get_input_entity("bob")
    replies: asyncio.Queue[str] = asyncio.Queue()
    burst_seen = 0
    burst_done = asyncio.Event()

    @b.on(events.NewMessage(incoming=True))
    async def bob_handler(event: events.NewMessage.Event) -> None:
        nonlocal burst_seen
        if event.raw_text.startswith("ping"):
            await event.reply("pong")
        else:
            burst_seen += 1
            if burst_seen == args.burst:
                burst_done.set()

    @a.on(events.NewMessage(incoming=True))
    async def alice_handler(event: events.NewMessage.Event) -> None:
        await replies.put(event.raw_text)

    await b(functions.contacts.ResolveUsernameRequest("alice"))  # warm Bob's entity cache

    def busy() -> float:
        return server.busy_seconds if server is not None else float("nan")

    # Phase 1: sequential round trips.
    rtts: list[float] = []
    busy0, t0 = busy(), time.perf_counter()
    for i in range(args.warmup + args.rounds):
        started = time.perf_counter()
        await a.send_message(bob, f"ping {i}")
        await asyncio.wait_for(replies.get(), 10)
        if i >= args.warmup:
            rtts.append(time.perf_counter() - started)
    wall = time.perf_counter() - t0
    busy_share = (busy() - busy0) / wall

    print(f"ping-pong: {args.rounds} round trips (+{args.warmup} warm-up), "
          f"server {'subprocess' if server is None else 'in-process'}")
    print(f"  round trip p50 {statistics.median(rtts) * 1000:.2f} ms, "
          f"p95 {percentile(rtts, 95) * 1000:.2f} ms, p99 {percentile(rtts, 99) * 1000:.2f} ms")
    print(f"  {2 * len(rtts) / sum(rtts):.0f} messages/s sequential "
          f"({len(rtts) / sum(rtts):.0f} round trips/s)")
    if server is not None:
        print(f"  server busy {busy_share:.0%} of wall time")

    # Phase 2: pipelined burst.
    window = asyncio.Semaphore(args.window)

    async def send(i: int) -> None:
        async with window:
            await a.send_message(bob, f"burst {i}")

    busy0, t0 = busy(), time.perf_counter()
    await asyncio.gather(*(send(i) for i in range(args.burst)))
    await asyncio.wait_for(burst_done.wait(), 60)
    wall = time.perf_counter() - t0
    print(f"burst: {args.burst} messages, window {args.window}: "
          f"{args.burst / wall:.0f} messages/s delivered")
    if server is not None:
        print(f"  server busy {(busy() - busy0) / wall:.0%} of wall time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--spawn", action="store_true", help="run the server in a subprocess")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
