"""The OpenAI adapter against the fake server, through the real `openai` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, web

from tests.providers.openai_fake import FakeOpenAI
from twin.brain.errors import LLMError, LLMRateLimited
from twin.brain.openai_llm import OpenAILLM
from twin.domain.prompts import PromptMessage
from twin.domain.structured import REPLY_JSON_SCHEMA, parse_reply

MESSAGES = [
    PromptMessage("system", "You are Ivan."),
    PromptMessage("user", "⟦contact n⟧\n[2024-05-01 10:00]\nпривет, как дела?\n⟦/contact n⟧"),
]


@pytest.fixture
async def llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAILLM]:
    adapter = OpenAILLM(
        model="gpt-4o-mini", api_key="sk-test", base_url=fake_openai.base_url + "/v1", timeout=2
    )
    yield adapter
    await adapter.aclose()


async def test_complete_sends_the_messages_and_json_schema(
    llm: OpenAILLM, fake_openai: FakeOpenAI
) -> None:
    completion = await llm.complete(
        MESSAGES, json_schema=REPLY_JSON_SCHEMA, max_tokens=200, temperature=0.3
    )
    body = fake_openai.chat_requests[-1]
    assert body["messages"] == [
        {"role": "system", "content": "You are Ivan."},
        {"role": "user", "content": MESSAGES[1].content},
    ]
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 200
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == REPLY_JSON_SCHEMA
    assert fake_openai.requests[-1].headers["Authorization"] == "Bearer sk-test"
    assert parse_reply(completion.text).text == "echo: привет, как дела?"
    assert completion.provider == "openai" and completion.model == "gpt-4o-mini"
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert not completion.usage_estimated
    assert completion.finish_reason == "stop"


async def test_json_object_mode_and_max_tokens_for_compatible_servers(
    fake_openai: FakeOpenAI,
) -> None:
    llm = OpenAILLM(
        model="llama3",
        api_key=None,
        base_url=fake_openai.base_url + "/v1",
        json_mode="json_object",
        provider="openai_compatible",
        limit_param="max_tokens",
    )
    try:
        await llm.complete(MESSAGES, json_schema=REPLY_JSON_SCHEMA, max_tokens=50, temperature=0)
    finally:
        await llm.aclose()
    body = fake_openai.chat_requests[-1]
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body


async def test_no_response_format_without_a_schema_or_in_none_mode(
    llm: OpenAILLM, fake_openai: FakeOpenAI
) -> None:
    await llm.complete(MESSAGES, max_tokens=50, temperature=0)
    assert "response_format" not in fake_openai.chat_requests[-1]


async def test_output_limit_reached_is_reported(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    fake_openai.queue_reply("x" * 400)
    completion = await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert completion.finish_reason == "length"
    assert len(completion.text) == 40


async def test_stream_yields_pieces_and_usage(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    fake_openai.queue_reply("ну привет, рад тебя слышать, как ты там")
    stream = llm.stream(MESSAGES, max_tokens=100, temperature=0.5)
    pieces = [piece async for piece in stream]
    assert len(pieces) > 1
    assert "".join(pieces) == "ну привет, рад тебя слышать, как ты там"
    body = fake_openai.chat_requests[-1]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert stream.completion is not None
    assert stream.completion.text == "".join(pieces)
    assert stream.completion.completion_tokens == 10  # the fake's 4 characters per token
    assert not stream.completion.usage_estimated


async def test_stream_without_usage_is_estimated(fake_openai: FakeOpenAI) -> None:
    llm = OpenAILLM(
        model="m", api_key="k", base_url=fake_openai.base_url + "/v1", stream_usage=False
    )
    try:
        stream = llm.stream(MESSAGES, max_tokens=100, temperature=0.5)
        text = "".join([p async for p in stream])
    finally:
        await llm.aclose()
    assert "stream_options" not in fake_openai.chat_requests[-1]
    assert stream.completion is not None and stream.completion.text == text
    assert stream.completion.usage_estimated
    assert stream.completion.prompt_tokens > 0


async def test_429_becomes_rate_limited_with_retry_after(
    llm: OpenAILLM, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(status=429, retry_after=7)
    with pytest.raises(LLMRateLimited) as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert info.value.retry_after == 7.0
    assert info.value.retryable and info.value.status == 429
    assert len(fake_openai.requests) == 1  # the SDK's own retries are off


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (400, False), (401, False)]
)
async def test_http_errors_are_translated(
    llm: OpenAILLM, fake_openai: FakeOpenAI, status: int, retryable: bool
) -> None:
    fake_openai.fail_next(status=status)
    with pytest.raises(LLMError) as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert info.value.status == status
    assert info.value.retryable is retryable
    assert not isinstance(info.value, LLMRateLimited)


async def test_a_hanging_server_times_out(fake_openai: FakeOpenAI) -> None:
    llm = OpenAILLM(model="m", api_key="k", base_url=fake_openai.base_url + "/v1", timeout=0.3)
    fake_openai.fail_next(hang=True)
    try:
        with pytest.raises(LLMError, match="timed out") as info:
            await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_connection_refused_is_retryable() -> None:
    fake = FakeOpenAI()
    await fake.start()
    url = fake.base_url + "/v1"
    await fake.stop()
    llm = OpenAILLM(model="m", api_key="k", base_url=url, timeout=1)
    try:
        with pytest.raises(LLMError, match="connection") as info:
            await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_stream_errors_before_the_first_piece_are_translated(
    llm: OpenAILLM, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(status=503)
    stream = llm.stream(MESSAGES, max_tokens=10, temperature=0)
    with pytest.raises(LLMError) as info:
        async for _ in stream:
            pass
    assert info.value.status == 503


async def test_more_routes_can_be_mounted_on_the_fake() -> None:
    async def models(request: web.Request) -> web.Response:
        await fake.record(request)
        return web.json_response({"object": "list", "data": []})

    fake = FakeOpenAI()
    fake.add_routes(lambda: [web.get("/v1/models", models)])
    await fake.start()
    try:
        fake.fail_next(status=503, path_contains="/v1/models")
        async with ClientSession() as session:
            async with session.get(fake.base_url + "/v1/models") as first:
                assert first.status == 503  # faults apply to mounted routes too
            async with session.get(fake.base_url + "/v1/models") as second:
                assert (await second.json())["object"] == "list"
    finally:
        await fake.stop()
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/models"]


async def test_the_lean_post_makes_the_sdks_request(
    llm: OpenAILLM, fake_openai: FakeOpenAI
) -> None:
    """`complete` goes around the SDK (twin.brain.openai_post) and `stream` through it: the
    same path, the same identifying headers, the same key."""
    await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    stream = llm.stream(MESSAGES, max_tokens=10, temperature=0)
    async for _ in stream:
        pass
    recorded = fake_openai.requests[-2:]
    assert [r.path for r in recorded] == ["/v1/chat/completions"] * 2
    lean, sdk = ({k.lower(): v for k, v in r.headers.items()} for r in recorded)
    for header in (
        "authorization",
        "user-agent",
        "accept",
        "content-type",
        "x-stainless-lang",
        "x-stainless-package-version",
        "x-stainless-runtime",
    ):
        assert lean[header] == sdk[header], header
    assert lean["user-agent"].startswith("AsyncOpenAI/Python")


async def test_the_servers_error_message_is_kept(llm: OpenAILLM, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(status=400, body={"error": {"message": "model 'x' does not exist"}})
    with pytest.raises(LLMError, match="HTTP 400: model 'x' does not exist") as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert not info.value.retryable


async def test_an_answer_that_is_no_completion_is_a_retryable_error(
    llm: OpenAILLM, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(status=200, body=["not", "a", "completion"])
    with pytest.raises(LLMError, match="not a JSON object") as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert info.value.retryable and info.value.status is None


async def test_the_environments_proxy_is_used_unless_no_proxy_covers_the_host(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the SDK's client: HTTP_PROXY from the environment (read once, not per request), its
    credentials sent to the proxy — and never the API key as the proxy's credentials; NO_PROXY
    sends the request straight to the server. The fake server stands in for the proxy: the
    API's host (a reserved name) never resolves."""
    proxy = fake_openai.base_url.replace("http://", "http://user:secret@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    far = OpenAILLM(model="m", api_key="sk-test", base_url="http://api.example.invalid/v1")
    try:
        completion = await far.complete(MESSAGES, max_tokens=20, temperature=0)
    finally:
        await far.aclose()
    assert parse_reply(completion.text).text == "echo: привет, как дела?"
    via = fake_openai.requests[-1]
    assert via.headers["Host"] == "api.example.invalid"  # asked of the proxy, for that host
    assert via.headers["Proxy-Authorization"] == "Basic dXNlcjpzZWNyZXQ="  # user:secret
    assert via.headers["Authorization"] == "Bearer sk-test"

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    near = OpenAILLM(model="m", api_key="sk-test", base_url=fake_openai.base_url + "/v1")
    try:
        await near.complete(MESSAGES, max_tokens=20, temperature=0)
    finally:
        await near.aclose()
    assert "Proxy-Authorization" not in fake_openai.requests[-1].headers
