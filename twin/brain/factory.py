"""Build the configured LLM (primary + fallback, wrapped in retries) and the Brain from settings."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from twin.brain.echo_llm import EchoLLM
from twin.brain.needs import provider_problem
from twin.brain.port import LLM, ToolBox
from twin.brain.pricing import DEFAULT_PRICES, PriceTable
from twin.brain.resilient import ResilientLLM
from twin.brain.service import Brain
from twin.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import SecretStr

    from twin.brain.embeddings import Embedder
    from twin.config import LLMSettings
    from twin.config_knowledge import EmbeddingSettings

__all__ = ["build_brain", "build_embedder", "build_llm", "build_provider"]

JsonMode = Literal["json_schema", "json_object", "none"]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_provider(
    provider: str,
    *,
    model: str,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    json_mode: JsonMode = "json_schema",
    api_version: str | None = None,
    thinking_budget: int | None = None,
    section: str = "llm",
) -> LLM:
    """One provider adapter, without retries. `provider`: openai | openai_compatible | gemini.
    `section` names the config section in error messages."""
    problem = provider_problem(provider, api_key=api_key, base_url=base_url, section=section)
    if problem:
        raise ConfigError([problem])
    # Each SDK is imported only when configured: openai ~60 MB, google-genai ~85 MB resident.
    if provider in ("openai", "openai_compatible"):
        from twin.brain.openai_llm import OpenAILLM
    if provider == "openai":
        return OpenAILLM(
            model=model,
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            json_mode=json_mode,
            provider="openai",
            limit_param="max_completion_tokens",
            stream_usage=True,
        )
    if provider == "openai_compatible":
        return OpenAILLM(
            model=model,
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            json_mode=json_mode,
            provider="openai_compatible",
            limit_param="max_tokens",
            stream_usage=False,  # some compatible servers reject stream_options
        )
    if provider == "echo":
        return EchoLLM()  # its own model name: "echo" (no price, no cost)
    if provider == "gemini":
        from twin.brain.gemini_llm import GeminiLLM

        return GeminiLLM(
            model=model,
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            api_version=api_version,
            thinking_budget=thinking_budget,
        )
    raise ConfigError([f"{section}.provider: unknown provider {provider!r}"])


def build_llm(
    settings: LLMSettings,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> ResilientLLM:
    """The configured primary provider, the optional `[llm.fallback]`, with retries/backoff."""
    primary = build_provider(
        settings.provider,
        model=settings.model,
        api_key=_secret(settings.api_key),
        base_url=settings.base_url,
        timeout=settings.timeout,
        json_mode=settings.json_mode,
        thinking_budget=settings.thinking_budget,
    )
    fallback: LLM | None = None
    fb = settings.fallback
    if fb.provider:
        if not fb.model:
            raise ConfigError(["llm.fallback.model: required when llm.fallback.provider is set"])
        fallback = build_provider(
            fb.provider,
            model=fb.model,
            api_key=_secret(fb.api_key),
            base_url=fb.base_url,
            timeout=fb.timeout,
            json_mode=settings.json_mode,
            thinking_budget=settings.thinking_budget,
            section="llm.fallback",
        )
    return ResilientLLM(
        primary,
        fallback,
        max_retries=settings.max_retries,
        backoff_base=settings.backoff_base,
        backoff_max=settings.backoff_max,
        max_retry_after=settings.max_retry_after,
        sleep=sleep,
        rng=rng,
    )


def build_brain(
    settings: LLMSettings,
    llm: LLM | None = None,
    tools: ToolBox | None = None,
    knowledge_share: float = 0.35,
) -> Brain:
    """A Brain over `llm` (default: `build_llm(settings)`) with the [llm] budget settings, the
    HTTP tools the model may call, and the share of the prompt knowledge passages may take."""
    return Brain(
        llm if llm is not None else build_llm(settings),
        context_tokens=settings.context_tokens,
        max_output_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
        prices=PriceTable(settings.prices, defaults=DEFAULT_PRICES),
        tools=tools,
        knowledge_share=knowledge_share,
    )


def build_embedder(settings: EmbeddingSettings, llm: LLMSettings) -> Embedder | None:
    """The embeddings provider of `[knowledge.embeddings]`, or None when none is configured.
    Its key is its own, else [llm]'s when [llm] uses the same provider."""
    if not settings.provider:
        return None
    from twin.brain.embeddings import GeminiEmbedder, OpenAIEmbedder
    from twin.retry import RetryPolicy

    api_key = _secret(settings.api_key)
    if api_key is None and llm.provider == settings.provider:
        api_key = _secret(llm.api_key)
    section = "knowledge.embeddings"
    checked = settings.provider
    if checked == "openai" and settings.base_url and not api_key:
        checked = "openai_compatible"  # a local embeddings server needs no key
    problem = provider_problem(
        checked, api_key=api_key, base_url=settings.base_url, section=section
    )
    if problem:
        raise ConfigError([problem])
    policy = RetryPolicy(
        max_retries=llm.max_retries, backoff_base=llm.backoff_base, backoff_max=llm.backoff_max
    )
    kind = GeminiEmbedder if settings.provider == "gemini" else OpenAIEmbedder
    return kind(
        model=settings.model,
        api_key=api_key,
        base_url=settings.base_url,
        dimensions=settings.dimensions,
        timeout=settings.timeout,
        batch=settings.batch,
        policy=policy,
    )
