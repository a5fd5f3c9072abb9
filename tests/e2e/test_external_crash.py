"""The external channel across kill -9 of a real `twin run` process (issue 15, item 2): a
message accepted with 202 is answered after a crash mid-generation, and a webhook cut by a
crash mid-delivery is posted again with the same idempotency key — one 2xx per delivery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.e2e.process import DaemonProcess
from tests.providers.openai_fake import FakeOpenAI

pytestmark = pytest.mark.e2e

SECRET = "crash-webhook-secret-0123456789"


def brain(text: str) -> dict[str, Any]:
    return {
        "text": text,
        "requires_human": False,
        "intent": "chat",
        "confidence": 0.9,
        "end_conversation": False,
    }


class Hook:
    def __init__(self) -> None:
        self.attempts: list[tuple[str, str, Any]] = []  # (key, outcome, payload)
        self.hold = True  # the first attempt hangs (the daemon is killed meanwhile)
        self.seen = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        key = request.headers["Idempotency-Key"]
        if self.hold:
            self.hold = False
            self.attempts.append((key, "cut", payload))
            self.seen.set()
            await asyncio.Event().wait()  # never answers: the daemon dies first
        self.attempts.append((key, "ok", payload))
        self.seen.set()
        return web.Response(status=204)


def make_daemon(tmp_path: Path, fake: FakeOpenAI, hook_url: str) -> DaemonProcess:
    config = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        "llm": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": fake.base_url + "/v1",
            "max_retries": 0,
            "timeout": 30,
        },
        "stt": {"provider": "none"},
        "twin": {"owner_name": "Olga", "retry_base_seconds": 0.05, "retry_max_seconds": 0.2},
        "channels": {
            "external": {
                "enabled": True,
                "webhook_url": hook_url,
                "timeout": 1.0,
                "retry_base": 0.05,
            }
        },
    }
    secrets = {
        "TWIN_LLM__API_KEY": "sk-test",
        "TWIN_SECURITY__SECRET_KEY": "crash-secret",
        "TWIN_CHANNELS__EXTERNAL__WEBHOOK_SECRET": SECRET,
    }
    return DaemonProcess(tmp_path, config, secrets)


@pytest.fixture
async def hook():
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    yield receiver, str(server.make_url("/hook"))
    await server.close()


async def test_kill_mid_generation_and_mid_delivery_ends_with_one_delivery(
    tmp_path: Path, fake_openai: FakeOpenAI, hook
) -> None:
    receiver, url = hook
    daemon = make_daemon(tmp_path, fake_openai, url)
    await daemon.start()
    fake_openai.fail_next(hang=True)  # the model never answers this first request
    fake_openai.respond_with(lambda body: brain("Answered after the restart."))
    status, accepted = await daemon.call(
        "POST", "/api/v1/external/messages", json={"chat_id": 42, "message": "Hello?"}
    )
    assert status == 202, accepted
    await asyncio.wait_for(fake_openai.request_seen.wait(), 15)  # generating
    daemon.kill()

    await daemon.start()  # the job is the worker's again once its lease ends; then delivered
    await asyncio.wait_for(receiver.seen.wait(), 60)
    receiver.seen.clear()
    daemon.kill()  # mid-delivery: the receiver holds the first attempt

    await daemon.start()
    await asyncio.wait_for(receiver.seen.wait(), 30)
    status, listed = await daemon.call("GET", "/webhooks/deliveries")
    daemon.terminate()
    (cut_key, cut, first), (key, ok, payload) = receiver.attempts
    assert (cut, ok) == ("cut", "ok") and cut_key == key  # the same delivery, posted again
    assert payload["message_text"] == "Answered after the restart." == first["message_text"]
    assert [d["state"] for d in listed["deliveries"]] == ["delivered"]  # one, delivered once
