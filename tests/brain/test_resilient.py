"""Retries, backoff, Retry-After, timeouts and fallback — real SDKs against the fake servers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from tests.brain.conftest import SleepRecorder
from tests.providers.gemini_fake import FakeGemini, rate_limit_body
from tests.providers.openai_fake import FakeOpenAI
from twin.brain.errors import LLMError, LLMRateLimited, LLMUnavailable
from twin.brain.gemini_llm import GeminiLLM
from twin.brain.openai_llm import OpenAILLM
from twin.brain.port import Completion
from twin.brain.resilient import ResilientLLM
from twin.domain.prompts import PromptMessage

MESSAGES = [PromptMessage("system", "You are Ivan."), PromptMessage("user", "ping")]


@pytest.fixture
async def fallback_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def openai_llm(fake: FakeOpenAI, model: str, timeout: float = 2.0) -> OpenAILLM:
    return OpenAILLM(model=model, api_key="k", base_url=fake.base_url + "/v1", timeout=timeout)


@pytest.fixture
async def make():
    created: list[ResilientLLM] = []

    def factory(primary, fallback=None, **kw) -> ResilientLLM:
        kw.setdefault("max_retries", 2)
        kw.setdefault("rng", random.Random(1))
        llm = ResilientLLM(primary, fallback, **kw)
        created.append(llm)
        return llm

    yield factory
    for llm in created:
        await llm.aclose()


async def complete(llm) -> Completion:
    return await llm.complete(MESSAGES, max_tokens=50, temperature=0)


async def test_429_retry_after_is_honoured(fake_openai, make, sleeps: SleepRecorder) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), sleep=sleeps)
    fake_openai.fail_next(status=429, retry_after=7)
    completion = await complete(llm)
    assert completion.text == "echo: ping"
    assert sleeps.calls == [7.0]
    assert len(fake_openai.requests) == 2


async def test_500_then_success_backs_off_with_full_jitter(
    fake_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), sleep=sleeps, backoff_base=0.5, max_retries=3)
    fake_openai.fail_next(status=500, times=2)
    completion = await complete(llm)
    assert completion.provider == "openai"
    assert len(fake_openai.requests) == 3
    assert len(sleeps.calls) == 2
    expected = random.Random(1)
    assert sleeps.calls == [expected.uniform(0, 0.5), expected.uniform(0, 1.0)]


async def test_hang_times_out_then_falls_back(
    fake_openai, fallback_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(
        openai_llm(fake_openai, "gpt-a", timeout=0.25),
        openai_llm(fallback_openai, "gpt-b"),
        max_retries=1,
        sleep=sleeps,
    )
    fake_openai.fail_next(hang=True, times=2)
    completion = await complete(llm)
    assert completion.model == "gpt-b"
    assert len(fake_openai.requests) == 2  # first try + one retry, both timed out
    assert len(fallback_openai.requests) == 1
    assert len(sleeps.calls) == 1


async def test_both_down_raises_unavailable(
    fake_openai, fallback_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), openai_llm(fallback_openai, "gpt-b"), sleep=sleeps)
    fake_openai.fail_next(status=503, times=3)
    fallback_openai.fail_next(status=502, times=3)
    with pytest.raises(LLMUnavailable) as info:
        await complete(llm)
    assert info.value.retry_after is None
    assert len(fake_openai.requests) == 3 and len(fallback_openai.requests) == 3
    assert len(sleeps.calls) == 4
    assert isinstance(info.value.__cause__, LLMError)


async def test_unavailable_carries_the_shortest_retry_after(
    fake_openai, fallback_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(
        openai_llm(fake_openai, "gpt-a"),
        openai_llm(fallback_openai, "gpt-b"),
        max_retry_after=30,
        sleep=sleeps,
    )
    fake_openai.fail_next(status=429, retry_after=120)  # too long to wait here
    fallback_openai.fail_next(status=429, retry_after=45)
    with pytest.raises(LLMUnavailable) as info:
        await complete(llm)
    assert info.value.retry_after == 45.0
    assert sleeps.calls == []  # neither was waited out
    assert len(fake_openai.requests) == 1 and len(fallback_openai.requests) == 1


async def test_permanent_errors_are_not_retried_but_fall_back(
    fake_openai, fallback_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), openai_llm(fallback_openai, "gpt-b"), sleep=sleeps)
    fake_openai.fail_next(status=401)
    completion = await complete(llm)
    assert completion.model == "gpt-b"
    assert len(fake_openai.requests) == 1
    assert sleeps.calls == []


async def test_only_permanent_failures_reraise_the_error(
    fake_openai, fallback_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), openai_llm(fallback_openai, "gpt-b"), sleep=sleeps)
    fake_openai.fail_next(status=400)
    fallback_openai.fail_next(status=404)
    with pytest.raises(LLMError) as info:
        await complete(llm)
    assert not isinstance(info.value, LLMUnavailable)  # rescheduling would not help
    assert info.value.status == 404


async def test_no_fallback_rate_limit_exhausted(fake_openai, make, sleeps: SleepRecorder) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), max_retries=1, sleep=sleeps)
    fake_openai.fail_next(status=429, retry_after=2, times=2)
    with pytest.raises(LLMUnavailable) as info:
        await complete(llm)
    assert info.value.retry_after == 2.0
    assert sleeps.calls == [2.0]
    assert isinstance(info.value.__cause__, LLMRateLimited)


async def test_gemini_primary_falls_back_to_openai(
    fake_gemini: FakeGemini, fake_openai, make, sleeps: SleepRecorder
) -> None:
    gemini = GeminiLLM(model="gemini-2.0-flash", api_key="k", base_url=fake_gemini.base_url)
    llm = make(gemini, openai_llm(fake_openai, "gpt-b"), max_retries=1, sleep=sleeps)
    fake_gemini.fail_next(status=429, body=rate_limit_body(5), times=2)
    completion = await complete(llm)
    assert completion.provider == "openai"
    assert sleeps.calls == [5.0]  # Gemini's RetryInfo delay was honoured once
    assert len(fake_gemini.requests) == 2


async def test_stream_retries_before_the_first_piece(
    fake_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(openai_llm(fake_openai, "gpt-a"), sleep=sleeps)
    fake_openai.fail_next(status=503)
    fake_openai.queue_reply("one two three four five six seven")
    stream = llm.stream(MESSAGES, max_tokens=50, temperature=0)
    text = "".join([piece async for piece in stream])
    assert text == "one two three four five six seven"
    assert stream.completion is not None and stream.completion.text == text
    assert len(sleeps.calls) == 1


async def test_stream_falls_back_when_the_primary_is_down(
    fake_openai, fallback_openai, make, sleeps: SleepRecorder
) -> None:
    llm = make(
        openai_llm(fake_openai, "gpt-a"),
        openai_llm(fallback_openai, "gpt-b"),
        max_retries=0,
        sleep=sleeps,
    )
    fake_openai.fail_next(status=500)
    stream = llm.stream(MESSAGES, max_tokens=50, temperature=0)
    assert "".join([piece async for piece in stream]) == "echo: ping"
    assert stream.completion is not None and stream.completion.model == "gpt-b"
