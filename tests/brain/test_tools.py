"""HTTP tools (issue 15, item 3): the owner's declared tools, called by the model through the
providers' function calling (OpenAI tools, Gemini function declarations, through their SDKs
against the fakes), run against a local fake shop, and stored with the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.channels.test_http_chat import AUTH, answer, chat_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import EventRecorder
from tests.providers.fixtures import fake_gemini, fake_openai  # noqa: F401  (fixtures)
from tests.providers.gemini_fake import FakeGemini
from tests.providers.openai_fake import FakeOpenAI, ToolCallReply
from twin import keys
from twin.app import create_app
from twin.config import load_settings
from twin.domain.tools import ToolCall, excerpt, host_allowed, render_url
from twin.services.tools import HttpTools

SHOP_TOKEN = "shop-secret-0123456789"


@pytest.fixture
async def shop() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A shop API: GET /orders/{id} with the right bearer token → the order."""
    seen: list[dict[str, Any]] = []

    async def order(request: web.Request) -> web.Response:
        seen.append({"id": request.match_info["id"], "auth": request.headers.get("Authorization")})
        if request.headers.get("Authorization") != f"Bearer {SHOP_TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if request.match_info["id"] != "A-7":
            return web.json_response({"error": "no such order"}, status=404)
        return web.json_response({"order": {"id": "A-7", "status": "shipped", "eta": "Friday"}})

    app = web.Application()
    app.router.add_get("/orders/{id}", order)
    server = TestServer(app)
    await server.start_server()
    yield f"127.0.0.1:{server.port}", seen
    await server.close()


def tools_section(host: str) -> dict[str, Any]:
    return {
        "allowed_hosts": [host],
        "http": {
            "order_status": {
                "description": "The status of an order by its id",
                "url": f"http://{host}/orders/{{order_id}}",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
                "excerpt": "order.status",
                "headers": {"Authorization": "TWIN_TEST_SHOP_AUTH"},
            }
        },
    }


def test_urls_excerpts_and_hosts() -> None:
    assert render_url("http://s/orders/{id}", {"id": "../admin x"}) == (
        "http://s/orders/..%2Fadmin%20x"  # an argument cannot leave its path segment
    )
    assert excerpt({"a": {"b": [1, {"c": "x"}]}}, "a.b.1.c") == "x"
    assert excerpt({"a": 1}, "a.z") == "(no 'a.z' in the answer)"
    assert excerpt({"a": [1, 2]}, "") == '{"a": [1, 2]}'
    assert host_allowed("https://Shop.Example/x", ["shop.example"])
    assert not host_allowed("http://shop.example.evil/x", ["shop.example"])
    assert not host_allowed("file:///etc/passwd", ["shop.example"])
    assert host_allowed("http://127.0.0.1:81/", ["127.0.0.1:81"])
    assert not host_allowed("http://127.0.0.1:82/", ["127.0.0.1:81"])


async def test_a_tool_is_called_as_declared(shop, monkeypatch) -> None:
    host, seen = shop
    monkeypatch.setenv("TWIN_TEST_SHOP_AUTH", f"Bearer {SHOP_TOKEN}")
    tools = HttpTools(load_settings(None, tools=tools_section(host)).tools)
    try:
        found = await tools.call(ToolCall("c1", "order_status", {"order_id": "A-7", "x": 1}))
        assert (found.ok, found.result, found.status) == (True, "shipped", 200)
        assert found.arguments == {"order_id": "A-7"}  # undeclared arguments are dropped
        missing = await tools.call(ToolCall("c2", "order_status", {"order_id": "B-1"}))
        assert not missing.ok and missing.result.startswith("error: HTTP 404")
        unknown = await tools.call(ToolCall("c3", "refund", {}))
        assert not unknown.ok and "no tool named refund" in unknown.result
        no_argument = await tools.call(ToolCall("c4", "order_status", {}))
        assert no_argument.result == "error: missing argument order_id"
        monkeypatch.delenv("TWIN_TEST_SHOP_AUTH")
        secretless = await tools.call(ToolCall("c5", "order_status", {"order_id": "A-7"}))
        assert "TWIN_TEST_SHOP_AUTH" in secretless.result and not secretless.ok
    finally:
        await tools.aclose()
    assert [s["id"] for s in seen] == ["A-7", "B-1"]  # nothing sent without its secret


def test_a_tool_outside_the_allowed_hosts_is_refused_at_start() -> None:
    section = tools_section("shop.example")
    section["allowed_hosts"] = ["other.example"]
    with pytest.raises(Exception, match="allowed_hosts"):
        load_settings(None, tools=section)


async def _chat_with_tools(aiohttp_client, settings: Any) -> tuple[Any, EventRecorder]:
    client = await aiohttp_client(create_app(settings))
    recorder = EventRecorder()
    client.app[keys.EVENTS].subscribe(recorder)
    return client, recorder


async def test_openai_calls_the_shop_and_answers_with_it(
    aiohttp_client,
    engine_url,  # noqa: F811
    tmp_path,
    fake_openai: FakeOpenAI,  # noqa: F811
    shop,
    monkeypatch,
) -> None:
    host, _ = shop
    monkeypatch.setenv("TWIN_TEST_SHOP_AUTH", f"Bearer {SHOP_TOKEN}")
    settings = chat_settings(
        engine_url, tmp_path, fake_openai.base_url + "/v1", tools=tools_section(host)
    )
    client, recorder = await _chat_with_tools(aiohttp_client, settings)
    fake_openai.queue_reply(
        ToolCallReply("order_status", {"order_id": "A-7"}),
        answer("Your order A-7 has shipped, it arrives Friday."),
    )
    said = await client.post(
        "/api/chat", json={"message": "Where is my order A-7?", "thread_id": "t"}, headers=AUTH
    )
    assert (await said.json())["response"] == "Your order A-7 has shipped, it arrives Friday."
    first, second = fake_openai.chat_requests
    assert [t["function"]["name"] for t in first["tools"]] == ["order_status"]
    tool_message = second["messages"][-1]
    assert (tool_message["role"], tool_message["content"]) == ("tool", "shipped")
    sent = await recorder.wait_for("reply.sent")
    reply = await client.app[keys.DATABASE].repo.get_reply(sent.data["reply"])
    [use] = reply.flags["tools"]
    assert (use["name"], use["arguments"], use["ok"], use["result"]) == (
        "order_status",
        {"order_id": "A-7"},
        True,
        "shipped",
    )
    assert reply.prompt_tokens and reply.prompt_tokens >= 10 + 1  # both rounds counted


async def test_gemini_calls_the_shop_and_answers_with_it(
    aiohttp_client,
    engine_url,  # noqa: F811
    tmp_path,
    fake_gemini: FakeGemini,  # noqa: F811
    shop,
    monkeypatch,
) -> None:
    host, _ = shop
    monkeypatch.setenv("TWIN_TEST_SHOP_AUTH", f"Bearer {SHOP_TOKEN}")
    settings = chat_settings(
        engine_url,
        tmp_path,
        "unused",
        tools=tools_section(host),
        llm={
            "provider": "gemini",
            "model": "gemini-2.0-flash",
            "base_url": fake_gemini.base_url,
            "api_key": "g-key",
            "max_retries": 0,
            "timeout": 5,
        },
    )
    client, recorder = await _chat_with_tools(aiohttp_client, settings)
    fake_gemini.queue_reply(
        ToolCallReply("order_status", {"order_id": "A-7"}),
        answer("Shipped! It arrives Friday."),
    )
    said = await client.post(
        "/api/chat", json={"message": "Where is A-7?", "thread_id": "g"}, headers=AUTH
    )
    assert (await said.json())["response"] == "Shipped! It arrives Friday."
    first, second = fake_gemini.generate_requests
    declared = first["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declared] == ["order_status"]
    response_part = second["contents"][-1]["parts"][0]["functionResponse"]
    assert response_part == {"name": "order_status", "response": {"result": "shipped"}}
    sent = await recorder.wait_for("reply.sent")
    reply = await client.app[keys.DATABASE].repo.get_reply(sent.data["reply"])
    assert reply.flags["tools"][0]["ok"] is True
