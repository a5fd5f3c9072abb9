"""Building the LLM and the Brain from [llm] settings."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from tests.brain.conftest import SleepRecorder
from tests.providers.gemini_fake import FakeGemini
from tests.providers.openai_fake import FakeOpenAI
from twin.brain.factory import build_brain, build_llm
from twin.brain.gemini_llm import GeminiLLM
from twin.brain.openai_llm import OpenAILLM
from twin.config import LLMSettings
from twin.domain.conversation import Persona, Turn
from twin.domain.prompts import PromptMessage
from twin.errors import ConfigError

MESSAGES = [PromptMessage("user", "ping")]


async def test_openai_primary_with_gemini_fallback(
    fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    settings = LLMSettings(
        provider="openai",
        model="gpt-4o-mini",
        base_url=fake_openai.base_url + "/v1",
        api_key="sk-1",
        max_retries=1,
        fallback={
            "provider": "gemini",
            "model": "gemini-2.0-flash",
            "base_url": fake_gemini.base_url,
            "api_key": "g-1",
        },
    )
    sleeps = SleepRecorder()
    llm = build_llm(settings, sleep=sleeps, rng=random.Random(0))
    try:
        assert isinstance(llm.primary, OpenAILLM) and isinstance(llm.fallback, GeminiLLM)
        fake_openai.fail_next(status=500, times=2)
        completion = await llm.complete(MESSAGES, max_tokens=20, temperature=0)
    finally:
        await llm.aclose()
    assert completion.provider == "gemini"
    assert fake_openai.requests[0].headers["Authorization"] == "Bearer sk-1"
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == "g-1"
    assert len(sleeps.calls) == 1


async def test_openai_compatible_uses_max_tokens_and_json_object(fake_openai: FakeOpenAI) -> None:
    settings = LLMSettings(
        provider="openai_compatible",
        model="llama3",
        base_url=fake_openai.base_url + "/v1",
        json_mode="json_object",
        context_tokens=4096,
        max_output_tokens=256,
        prices={"llama3": {"input": 0, "output": 0}},
    )
    brain = build_brain(settings)
    try:
        result = await brain.reply(
            history=[Turn("contact", "hi", datetime(2024, 1, 1))],
            persona=Persona("Ivan"),
            contact_name="Anna",
        )
    finally:
        await brain.llm.aclose()
    body = fake_openai.chat_requests[-1]
    assert body["max_tokens"] == 256
    assert body["response_format"] == {"type": "json_object"}
    assert result.reply.text == "echo: hi"
    assert result.cost.priced
    assert brain.budget_tokens == 4096 - 256


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"provider": "openai"}, "llm.api_key"),
        ({"provider": "openai_compatible"}, "llm.base_url"),
        ({"provider": "gemini"}, "llm.api_key"),
        (
            {"provider": "openai", "api_key": "k", "fallback": {"provider": "gemini"}},
            "llm.fallback.model",
        ),
        (
            {
                "provider": "openai",
                "api_key": "k",
                "fallback": {"provider": "openai", "model": "gpt-4o"},
            },
            "TWIN_LLM__FALLBACK__API_KEY",
        ),
    ],
)
def test_missing_settings_fail_with_one_clear_line(settings: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_llm(LLMSettings(**settings))
    assert len(info.value.problems) == 1
    assert problem in info.value.problems[0]


def test_context_must_leave_room_for_the_prompt() -> None:
    with pytest.raises(ValueError, match="context_tokens"):
        LLMSettings(context_tokens=1200, max_output_tokens=400)
