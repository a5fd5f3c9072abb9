"""`POST /api/chat/stream` with Gemini as the model (issue 14, item 3): the google-genai SDK
streams from the fake Gemini server (`streamGenerateContent?alt=sse`) and the daemon relays its
pieces as `delta` events; a client that leaves closes Gemini's stream too."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from tests.channels.test_http_chat import AUTH, chat_settings, sse_events
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import EventRecorder
from tests.providers.fixtures import fake_gemini  # noqa: F401  (a fixture)
from tests.providers.gemini_fake import FakeGemini
from twin import keys
from twin.app import create_app


@pytest.fixture
async def client(aiohttp_client, engine_url, tmp_path, fake_gemini) -> TestClient:  # noqa: F811
    settings = chat_settings(
        engine_url,
        tmp_path,
        "unused",
        llm={
            "provider": "gemini",
            "model": "gemini-2.0-flash",
            "base_url": fake_gemini.base_url,
            "api_key": "g-key",
            "max_retries": 0,
            "timeout": 5,
        },
    )
    return await aiohttp_client(create_app(settings))


def methods(fake: FakeGemini) -> list[str]:
    return [request["_method"] for request in fake.generate_requests]


async def test_gemini_streams_deltas_then_done(
    client: TestClient,
    fake_gemini: FakeGemini,  # noqa: F811
) -> None:
    full = "Hello Anna, we are open from nine to six today."
    fake_gemini.queue_reply(full)
    response = await client.post(
        "/api/chat/stream", json={"message": "Open today?", "thread_id": "g-1"}, headers=AUTH
    )
    assert response.status == 200
    events = sse_events(await response.text())
    deltas = [data["text"] for kind, data in events if kind == "delta"]
    assert len(deltas) > 1 and "".join(deltas) == full
    assert methods(fake_gemini) == ["streamGenerateContent"]  # streamed by Gemini too
    kind, done = events[-1]
    assert kind == "done"
    assert done["thread_id"] == "g-1" and done["response"] == full
    assert done["usage"]["completion_tokens"] > 0
    repo = client.app[keys.DATABASE].repo
    [sent] = [e for e in await repo.events_since(0, limit=100) if e.type == "reply.sent"]
    stored = await repo.get_reply(sent.data["reply"])
    assert stored.text == full and stored.completion_tokens == done["usage"]["completion_tokens"]


async def test_a_client_leaving_closes_geminis_stream(
    client: TestClient,
    fake_gemini: FakeGemini,  # noqa: F811
) -> None:
    recorder = EventRecorder()
    client.app[keys.EVENTS].subscribe(recorder)
    fake_gemini.queue_reply("one two three four five six seven eight nine")
    fake_gemini.stream_gate = asyncio.Event()  # Gemini stops after its first piece
    response = await client.post(
        "/api/chat/stream", json={"message": "count", "thread_id": "g-gone"}, headers=AUTH
    )
    first = await response.content.readuntil(b"\n\n")
    [(kind, data)] = sse_events(first.decode())
    assert kind == "delta" and data["text"]
    response.close()  # the client goes away

    cancelled = await recorder.wait_for("reply.cancelled")
    assert cancelled.data["reason"] == "no_client"
    fake_gemini.stream_gate.set()
    await asyncio.wait_for(fake_gemini.stream_closed.wait(), 5)
    assert fake_gemini.streams_closed == 1  # Gemini's stream was closed, not read out
    repo = client.app[keys.DATABASE].repo
    reply = await repo.get_reply(cancelled.data["reply"])
    assert reply.text == data["text"]  # the partial text, kept on the cancelled job
    assert recorder.of("reply.sent") == []
