"""Outbound webhooks of the external channel: deliveries per second and the time from the
twin's answer to its delivery.

    python bench/webhooks.py [--messages 1000] [--rate 100]

The daemon runs as `twin run` in its own process (SQLite, the external channel on, a
zero-latency fake OpenAI); the receiver and the senders run in this process on loopback.

  baseline   this process POSTing the same signed JSON to the same receiver, 16 at a time:
             what the receiver and loopback can take (posts/s).
  burst      `--messages` inbound messages (one dialogue each) sent as fast as 16 clients can:
             inbound → worker → model → answer + webhook (one transaction) → POST, in
             deliveries/s (and × of the baseline).
  paced      the same at a steady `--rate` messages/s: the time from the twin's answer being
             stored (`sent_at` in the payload) to the receiver reading the webhook, p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from bench.channels import ANSWER, AUTH, daemon
from tests.providers.openai_fake import FakeOpenAI
from twin.domain.webhooks import sign

SECRET = "bench-webhook-secret-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.count = 0
        self.done = asyncio.Event()
        self.expect = 0

    async def handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        arrived = time.time()
        sent_at = payload.get("sent_at")
        if sent_at:
            self.latencies.append(arrived - datetime.fromisoformat(sent_at).timestamp())
        self.count += 1
        if self.count >= self.expect:
            self.done.set()
        return web.Response(status=204)

    def reset(self, expect: int) -> None:
        self.latencies, self.count, self.expect = [], 0, expect
        self.done.clear()


async def baseline(url: str, receiver: Receiver, n: int) -> float:
    body = json.dumps({"wh_type": "message", "message_text": "Sure, see you at six."}).encode()
    receiver.reset(n)
    async with aiohttp.ClientSession() as session:

        async def post(count: int) -> None:
            for _ in range(count):
                headers = {"Content-Type": "application/json",
                           "X-Twin-Signature": sign(SECRET, body, time.time())}
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()

        start = time.perf_counter()
        await asyncio.gather(*(post(n // 16) for _ in range(16)))
        return (n // 16 * 16) / (time.perf_counter() - start)


async def inbound(base: str, receiver: Receiver, n: int, rate: float | None) -> float:
    receiver.reset(n)
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def send(i: int) -> None:
            body = {"chat_id": f"bench-{rate}-{i}", "message": "See you tonight?"}
            async with session.post(base + "/api/v1/external/messages", json=body) as r:
                assert r.status == 202, await r.text()

        start = time.perf_counter()
        if rate is None:
            queue = iter(range(n))

            async def client() -> None:
                for i in queue:
                    await send(i)

            await asyncio.gather(*(client() for _ in range(16)))
        else:
            tasks = []
            for i in range(n):
                tasks.append(asyncio.create_task(send(i)))
                await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
            await asyncio.gather(*tasks)
        await asyncio.wait_for(receiver.done.wait(), 120)
        return n / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    fake = FakeOpenAI()
    await fake.start()
    fake.respond_with(lambda body: ANSWER)
    extra = f'\n[channels.external]\nenabled = true\nwebhook_url = "{url}"\n'
    with tempfile.TemporaryDirectory() as tmp:
        process, base = await daemon(
            tmp, fake.base_url + "/v1", extra, {"TWIN_CHANNELS__EXTERNAL__WEBHOOK_SECRET": SECRET}
        )
        try:
            direct = await baseline(url, receiver, args.messages)
            await inbound(base, receiver, 50, None)  # warm-up
            burst = await inbound(base, receiver, args.messages, None)
            await inbound(base, receiver, int(args.rate * args.seconds), args.rate)
            paced = sorted(receiver.latencies)
        finally:
            process.terminate()
            process.wait(30)
            await fake.stop()
            await runner.cleanup()
    p50 = statistics.median(paced) * 1e3
    p95 = paced[int(len(paced) * 0.95) - 1] * 1e3
    print(f"baseline: this process posting to the receiver   {direct:,.0f} posts/s")
    print(f"burst: inbound → answered → delivered           {burst:,.0f} deliveries/s "
          f"(×{burst / direct:.2f} of the baseline)")
    print(f"paced at {args.rate:.0f}/s: answer stored → webhook received  "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(paced)} deliveries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
