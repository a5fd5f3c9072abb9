"""The HTTP chat channel's overhead: `POST /api/chat` against calling the openai SDK directly.

    python bench/channels.py [--requests 400] [--concurrency 16] [--streams 200]

The daemon runs as `twin run` in its own process (SQLite in a temporary directory, access log
on, as deployed); the fake OpenAI server (zero latency) and the clients run in this process, on
loopback. Figures:

  direct   the openai SDK's `chat.completions.create` against the fake, one call at a time
           (p50) and `--concurrency` at a time (calls/s): the baseline.
  chat     `POST /api/chat` (the daemon stores the message and the job, calls the same SDK
           against the same fake, stores the answer, responds), one at a time (p50: its
           overhead is chat p50 - direct p50) and `--concurrency` at a time (req/s), each
           request a new conversation (a prompt the size of the direct call's); then the same
           load on `--concurrency` running conversations, whose memory (and prompt) grows with
           every turn up to the [llm] context budget.
  stream   `POST /api/chat/stream`: the time from the fake writing its first chunk to the
           client reading the first `delta` event (p50).
  talkme   `POST /webhook/talkme` (header secret), one at a time, each the first turn of a new
           caller (a prompt the size of the direct call's): p50, its overhead.

The direct calls use the openai SDK with its aiohttp transport (`DefaultAioHttpClient`); the
daemon's calls without a stream go through twin.brain.openai_post (the same request on aiohttp,
bench/llm_call.py) since 2026-12-06, its streams through the same SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from openai import AsyncOpenAI, DefaultAioHttpClient

from tests.providers.openai_fake import FakeOpenAI

TOKEN = "bench-token-0123456789abcdef"
SECRET = "bench-talkme-secret-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANSWER = {"text": "Sure, see you at six.", "requires_human": False, "intent": "chat",
          "confidence": 0.9, "end_conversation": False}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


async def direct(fake: FakeOpenAI, n: int, concurrency: int) -> tuple[float, float]:
    client = AsyncOpenAI(api_key="sk-bench", base_url=fake.base_url + "/v1", max_retries=0,
                         http_client=DefaultAioHttpClient())  # as twin.brain.openai_llm does
    messages = [{"role": "system", "content": "You are Olga."},
                {"role": "user", "content": "See you tonight?"}]

    async def call() -> float:
        start = time.perf_counter()
        await client.chat.completions.create(
            model="gpt-bench", messages=messages, max_completion_tokens=400,
            response_format={"type": "json_object"},
        )
        return time.perf_counter() - start

    for _ in range(20):
        await call()
    single = [await call() for _ in range(n)]
    start = time.perf_counter()
    await asyncio.gather(*(_worker(call, n // concurrency) for _ in range(concurrency)))
    rate = (n // concurrency * concurrency) / (time.perf_counter() - start)
    await client.close()
    return statistics.median(single), rate


async def _worker(call, count: int) -> None:
    for _ in range(count):
        await call()


async def chat(base: str, n: int, concurrency: int) -> tuple[float, float, float]:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        counter = iter(range(10**9))

        async def post(thread: str) -> float:
            start = time.perf_counter()
            async with session.post(base + "/api/chat",
                                    json={"message": "See you tonight?", "thread_id": thread}) as r:
                assert r.status == 200, await r.text()
                await r.read()
            return time.perf_counter() - start

        for _ in range(20):
            await post(f"warm-{next(counter)}")
        single = [await post(f"single-{next(counter)}") for _ in range(n)]

        async def load(thread: Callable[[int], str]) -> float:
            async def worker(index: int) -> None:
                for _ in range(n // concurrency):
                    await post(thread(index))

            start = time.perf_counter()
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
            return (n // concurrency * concurrency) / (time.perf_counter() - start)

        fresh = await load(lambda index: f"new-{next(counter)}")
        running = await load(lambda index: f"load-{index}")
    return statistics.median(single), fresh, running


async def talkme(base: str, n: int) -> float:
    headers = {"X-TalkMe-Secret": SECRET}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(i: int) -> float:
            body = {"session_id": f"call-{i}", "user_id": f"caller-{i}",
                    "message": "See you tonight?", "timestamp": str(i)}
            start = time.perf_counter()
            async with session.post(base + "/webhook/talkme", json=body) as r:
                assert r.status == 200, await r.text()
                await r.read()
            return time.perf_counter() - start

        for i in range(20):
            await post(10**6 + i)
        return statistics.median([await post(i) for i in range(n)])


async def stream(base: str, fake: FakeOpenAI, n: int) -> float:
    gaps = []
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for i in range(n):
            fake.queue_reply("one two three four five six seven eight nine ten")
            async with session.post(base + "/api/chat/stream",
                                    json={"message": "count", "thread_id": f"s-{i}"}) as r:
                await r.content.readuntil(b"\n\n")
                arrived = time.perf_counter()
                await r.read()
            gaps.append(arrived - fake.first_piece_at[-1])
    return statistics.median(gaps[10:] or gaps)


CONFIG = """
[storage]
url = "sqlite+aiosqlite:///{tmp}/twin.db"
data_dir = "{tmp}"

[api]
rate_limit_requests = 1000000000

[llm]
provider = "openai"
model = "gpt-bench"
base_url = "{llm}"
max_retries = 0
json_mode = "json_object"

[stt]
provider = "none"

[tts]
provider = "none"

[channels.talkme]
enabled = true

[logging]
level = "WARNING"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(
    tmp: str, llm: str, port: int, extra: str = "", env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    config = Path(tmp) / "config.toml"
    config.write_text(CONFIG.format(tmp=tmp, llm=llm) + extra)
    env = {**os.environ, "TWIN_CHANNELS__TALKME__SECRET": SECRET, "TWIN_API__TOKENS": TOKEN,
           "TWIN_SECURITY__SECRET_KEY": "bench-secret", "TWIN_LLM__API_KEY": "sk-bench",
           **(env or {})}
    with open(Path(tmp) / "daemon.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "twin", "run", "--config", str(config), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )


async def daemon(
    tmp: str, llm: str, extra: str = "", env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`twin run` in its own process (`extra`: more config.toml); returns once it answers
    /health."""
    port = free_port()
    process = spawn(tmp, llm, port, extra, env)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.poll() is not None:
                raise SystemExit("the daemon exited: " + (Path(tmp) / "daemon.log").read_text())
            try:
                async with session.get(base + "/health") as r:
                    if r.status == 200:
                        return process, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # polling a starting process: nothing to wait on
    process.kill()
    raise SystemExit("the daemon did not become ready in 30 s")


async def run(args: argparse.Namespace) -> None:
    fake = FakeOpenAI()
    await fake.start()
    fake.respond_with(lambda body: ANSWER)
    with tempfile.TemporaryDirectory() as tmp:
        process, base = await daemon(tmp, fake.base_url + "/v1")
        try:
            direct_p50, direct_rate = await direct(fake, args.requests, args.concurrency)
            chat_p50, chat_rate, running_rate = await chat(base, args.requests, args.concurrency)
            first_delta = await stream(base, fake, args.streams)
            fake.respond_with(lambda body: ANSWER)
            talkme_p50 = await talkme(base, args.requests)
        finally:
            process.terminate()
            process.wait(30)
            await fake.stop()
    print(f"direct openai SDK   p50 {ms(direct_p50)}   {direct_rate:,.0f} calls/s")
    print(f"POST /api/chat      p50 {ms(chat_p50)}   {chat_rate:,.0f} req/s "
          f"(×{chat_rate / direct_rate:.2f} of direct)")
    print(f"  on {args.concurrency} running conversations (growing memory)  "
          f"{running_rate:,.0f} req/s")
    print(f"overhead            p50 +{ms(chat_p50 - direct_p50)}")
    print(f"stream: provider's first chunk → client's first delta  p50 {ms(first_delta)}")
    print(f"POST /webhook/talkme p50 {ms(talkme_p50)}   overhead +{ms(talkme_p50 - direct_p50)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--streams", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
