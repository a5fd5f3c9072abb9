"""twin.client.TwinClient against the live daemon (issue 15, item 4): it knows exactly the
operations of the live /openapi.json, its typed methods work over real HTTP (chat, the SSE
stream, events, twins, the external channel), and every error answer raises its class."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.channels.test_http_chat import AUTH, TOKEN, answer, chat_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin import client as twin_client
from twin.api.views.chat import ChatOut
from twin.api.views.twins import TwinOut
from twin.app import create_app
from twin.client import (
    ChatDone,
    Conflict,
    Forbidden,
    NotFound,
    TwinClient,
    Unauthorized,
    ValidationFailed,
)

SECRET = "client-webhook-secret-0123456789"


@pytest.fixture
async def server(aiohttp_client, engine_url, tmp_path, fake_openai) -> TestClient:  # noqa: F811
    settings = chat_settings(
        engine_url,
        tmp_path,
        fake_openai.base_url + "/v1",
        channels={
            "external": {
                "enabled": True,
                "webhook_url": "http://127.0.0.1:9/hook",  # closed: deliveries stay pending
                "webhook_secret": SECRET,
            }
        },
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def twin(server: TestClient) -> Any:
    async with TwinClient(str(server.make_url("")), TOKEN) as client:
        yield client


async def test_the_client_knows_exactly_the_live_documents_operations(
    server: TestClient,
) -> None:
    document = await (await server.get("/openapi.json", headers=AUTH)).json()
    live = {
        operation["operationId"]: (method.upper(), path)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    known = {name: (e.method, e.path) for name, e in twin_client.ENDPOINTS.items()}
    assert known == live
    # the scopes a key may have are the ones the API documents
    from typing import get_args

    from twin.api.views.keys import Scope
    from twin.services.keys import SCOPES

    assert get_args(Scope) == SCOPES
    # and every named method calls an operation of the document
    for name in ("accounts", "chats", "twins", "keys", "stats", "deliveries"):
        assert callable(getattr(TwinClient, name))


async def test_chat_stream_and_events_through_the_client(
    twin: TwinClient,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    # from the first event on (a fresh database): the stream may connect after the reply
    events = twin.events(types="reply.sent", last_event_id=0)
    first_event = asyncio.ensure_future(anext(events))
    fake_openai.queue_reply(answer("Open until six."))
    said = await twin.chat("Open today?", thread_id="client-1")
    assert isinstance(said, ChatOut) and said.response == "Open until six."
    event = await asyncio.wait_for(first_event, 10)
    assert (event.type, event.account, event.data["channel"]) == ("reply.sent", "chat", "http_chat")
    await events.aclose()

    fake_openai.queue_reply("We open at nine tomorrow.")
    pieces = [piece async for piece in twin.chat_stream("And tomorrow?", thread_id="client-1")]
    *deltas, done = pieces
    assert isinstance(done, ChatDone) and done.response == "".join(deltas)
    assert done.thread_id == "client-1" and len(deltas) > 1


async def test_twins_keys_and_errors_through_the_client(
    twin: TwinClient, server: TestClient
) -> None:
    created = await twin.create_twin("sales", twin={"owner_name": "Sally"})
    assert isinstance(created, TwinOut) and created.effective.twin.owner_name == "Sally"
    assert [t.name for t in (await twin.twins()).twins] == ["default", "sales"]
    with pytest.raises(Conflict) as duplicate:
        await twin.create_twin("sales")
    assert duplicate.value.status == 409 and duplicate.value.request_id
    with pytest.raises(NotFound):
        await twin.twin("nobody")
    await twin.delete_twin("sales")

    key = await twin.call("key_create", body={"name": "widget", "scopes": ["chat"]})
    async with TwinClient(str(server.make_url("")), key.key) as limited:
        with pytest.raises(Forbidden):
            await limited.twins()  # a chat key cannot read the control API
    async with TwinClient(str(server.make_url("")), "not-a-key-0123456789") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.accounts()


async def test_the_external_channel_through_the_client(
    twin: TwinClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    server: TestClient,
) -> None:
    from tests.fakes import EventRecorder
    from twin import keys

    recorder = EventRecorder()
    server.app[keys.EVENTS].subscribe(recorder)
    fake_openai.queue_reply(answer("Yes."))
    accepted = await twin.external_message(5, "Hello?", channel_id="tg")
    assert accepted.thread_id == "tg:5"
    await recorder.wait_for("reply.sent")
    [queued] = (await twin.deliveries()).deliveries
    assert queued.payload["message_text"] == "Yes." and queued.state == "pending"
    with pytest.raises(Conflict):
        await twin.redeliver(queued.id)  # queued already


async def test_analytics_through_the_client(
    twin: TwinClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    server: TestClient,
) -> None:
    fake_openai.queue_reply(answer("Open until six."))
    await twin.chat("Open today?", thread_id="a-1")
    metrics = await twin.analytics(platform="http_chat")
    assert (metrics.conversations.total, metrics.conversations.successful) == (1, 1)
    assert (metrics.messages.inbound, metrics.messages.outbound) == (1, 1)
    assert metrics.platforms["http_chat"].users == 1
    assert metrics.messages.avg_response_time is not None
    key = await twin.call("key_create", body={"name": "bi", "scopes": ["analytics"]})
    async with TwinClient(str(server.make_url("")), key.key) as bi:
        assert (await bi.analytics(user_id="a-1")).messages.total == 2
        with pytest.raises(Forbidden):
            await bi.twins()
    with pytest.raises(ValidationFailed):
        await twin.analytics(start_date="2026-12-05", end_date="2026-12-01")
