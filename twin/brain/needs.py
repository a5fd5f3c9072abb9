"""What each LLM provider needs before it can be built (pure: no SDK is imported here).

`build_provider` refuses a provider that lacks it; `twin check-config` reports the same lines
without building anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.config import LLMSettings

PROVIDERS = ("openai", "openai_compatible", "gemini", "echo")  # echo: built in, no key


def provider_problem(
    provider: str, *, api_key: str | None, base_url: str | None, section: str = "llm"
) -> str | None:
    """Why `provider` cannot be built with this key and base URL, or None. An OpenAI-compatible
    server (Ollama, vLLM, llama.cpp…) needs its base_url and no key; Gemini needs a key unless
    a base_url points at a keyless proxy; OpenAI always needs a key."""
    env = "TWIN_" + section.upper().replace(".", "__") + "__API_KEY"
    if provider == "openai" and not api_key:
        return f"{section}.api_key: required for provider 'openai' ({env})"
    if provider == "openai_compatible" and not base_url:
        return f"{section}.base_url: required for provider 'openai_compatible'"
    if provider == "gemini" and not api_key and not base_url:
        return f"{section}.api_key: required for provider 'gemini' ({env})"
    if provider not in PROVIDERS:
        return f"{section}.provider: unknown provider {provider!r}"
    return None


def llm_problems(settings: LLMSettings) -> list[str]:
    """Why `build_llm(settings)` would refuse: the primary provider, then the fallback."""
    problems = []
    primary = provider_problem(
        settings.provider,
        api_key=_secret(settings.api_key),
        base_url=settings.base_url,
    )
    if primary:
        problems.append(primary)
    fallback = settings.fallback
    if fallback.provider:
        if not fallback.model:
            problems.append("llm.fallback.model: required when llm.fallback.provider is set")
        problem = provider_problem(
            fallback.provider,
            api_key=_secret(fallback.api_key),
            base_url=fallback.base_url,
            section="llm.fallback",
        )
        if problem:
            problems.append(problem)
    return problems


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return get() if get is not None else None
