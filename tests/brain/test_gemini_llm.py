"""The Gemini adapter against the fake server, through the real `google-genai` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.providers.gemini_fake import FakeGemini, rate_limit_body
from twin.brain.errors import LLMError, LLMRateLimited
from twin.brain.gemini_llm import GeminiLLM
from twin.domain.prompts import PromptMessage
from twin.domain.structured import REPLY_JSON_SCHEMA, parse_reply

MESSAGES = [
    PromptMessage("system", "You are Ivan."),
    PromptMessage("assistant", "(an earlier owner message)"),
    PromptMessage("user", "⟦contact n⟧\n[2024-05-01 10:00]\nhi there\n⟦/contact n⟧"),
    PromptMessage("user", "⟦contact n⟧\n[2024-05-01 10:01]\nare you free?\n⟦/contact n⟧"),
    PromptMessage("assistant", "yes"),
    PromptMessage("user", "great"),
]


@pytest.fixture
async def llm(fake_gemini: FakeGemini) -> AsyncIterator[GeminiLLM]:
    adapter = GeminiLLM(
        model="gemini-2.0-flash", api_key="g-key", base_url=fake_gemini.base_url, timeout=2
    )
    yield adapter
    await adapter.aclose()


async def test_complete_maps_roles_system_and_json(llm: GeminiLLM, fake_gemini: FakeGemini) -> None:
    completion = await llm.complete(
        MESSAGES, json_schema=REPLY_JSON_SCHEMA, max_tokens=120, temperature=0.4
    )
    request = fake_gemini.requests[-1]
    assert request.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert request.headers["x-goog-api-key"] == "g-key"
    body = fake_gemini.generate_requests[-1]
    assert body["systemInstruction"]["parts"] == [{"text": "You are Ivan."}]
    roles = [c["role"] for c in body["contents"]]
    assert roles == ["user", "model", "user", "model", "user"]  # opens with user, alternates
    merged = [p["text"] for p in body["contents"][2]["parts"]]
    assert merged == [MESSAGES[2].content, MESSAGES[3].content]
    config = body["generationConfig"]
    assert config["maxOutputTokens"] == 120
    assert config["temperature"] == 0.4
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == REPLY_JSON_SCHEMA
    assert parse_reply(completion.text).text == "echo: great"
    assert completion.provider == "gemini" and completion.model == "gemini-2.0-flash"
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert not completion.usage_estimated
    assert completion.finish_reason == "stop"


async def test_older_response_schema_field(fake_gemini: FakeGemini) -> None:
    llm = GeminiLLM(
        model="gemini-1.5-flash",
        api_key="k",
        base_url=fake_gemini.base_url,
        schema_field="response_schema",
        thinking_budget=0,
    )
    try:
        await llm.complete(MESSAGES, json_schema=REPLY_JSON_SCHEMA, max_tokens=50, temperature=0)
    finally:
        await llm.aclose()
    config = fake_gemini.generate_requests[-1]["generationConfig"]
    assert "responseJsonSchema" not in config
    schema = config["responseSchema"]
    assert schema["type"].upper() == "OBJECT"
    assert set(schema["properties"]) == set(REPLY_JSON_SCHEMA["properties"])
    assert "additionalProperties" not in schema
    # (google-genai 1.75 sends this key in snake_case; the API accepts both spellings)
    assert config["thinkingConfig"] in ({"thinkingBudget": 0}, {"thinking_budget": 0})


async def test_stream_yields_pieces_and_usage(llm: GeminiLLM, fake_gemini: FakeGemini) -> None:
    fake_gemini.queue_reply("sure, see you at seven near the station then")
    stream = llm.stream(MESSAGES, max_tokens=100, temperature=0.5)
    pieces = [piece async for piece in stream]
    assert len(pieces) > 1
    assert "".join(pieces) == "sure, see you at seven near the station then"
    assert fake_gemini.requests[-1].path.endswith(":streamGenerateContent")
    assert fake_gemini.generate_requests[-1]["_query"] == {"alt": "sse"}
    assert stream.completion is not None
    assert stream.completion.text == "".join(pieces)
    assert stream.completion.completion_tokens == 11
    assert not stream.completion.usage_estimated


async def test_429_with_retry_info_becomes_rate_limited(
    llm: GeminiLLM, fake_gemini: FakeGemini
) -> None:
    fake_gemini.fail_next(status=429, body=rate_limit_body(37))
    with pytest.raises(LLMRateLimited) as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert info.value.retry_after == 37.0
    assert len(fake_gemini.requests) == 1


async def test_retry_after_header_wins(llm: GeminiLLM, fake_gemini: FakeGemini) -> None:
    fake_gemini.fail_next(status=429, retry_after=3)
    with pytest.raises(LLMRateLimited) as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (400, False), (403, False)]
)
async def test_http_errors_are_translated(
    llm: GeminiLLM, fake_gemini: FakeGemini, status: int, retryable: bool
) -> None:
    fake_gemini.fail_next(status=status)
    with pytest.raises(LLMError) as info:
        await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert info.value.status == status
    assert info.value.retryable is retryable


async def test_a_hanging_server_times_out(fake_gemini: FakeGemini) -> None:
    llm = GeminiLLM(
        model="gemini-2.0-flash", api_key="k", base_url=fake_gemini.base_url, timeout=0.3
    )
    fake_gemini.fail_next(hang=True)
    try:
        with pytest.raises(LLMError, match="timed out") as info:
            await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_connection_refused_fails_fast_and_is_retryable() -> None:
    fake = FakeGemini()
    await fake.start()
    url = fake.base_url
    await fake.stop()
    llm = GeminiLLM(model="gemini-2.0-flash", api_key="k", base_url=url, timeout=5)
    try:
        with pytest.raises(LLMError, match="connection") as info:
            await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_blocked_prompt_gives_empty_text(llm: GeminiLLM, fake_gemini: FakeGemini) -> None:
    fake_gemini.queue_reply("")
    completion = await llm.complete(MESSAGES, max_tokens=10, temperature=0)
    assert completion.text == ""
    assert parse_reply(completion.text).requires_human
