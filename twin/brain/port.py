"""The LLM port: what the brain needs from a language-model provider.

Adapters (openai_llm, gemini_llm) implement `LLM`; `ResilientLLM` wraps them with retries and a
fallback and implements it too. Messages are the domain's `PromptMessage`s; no SDK type crosses
this boundary in either direction, and every provider failure surfaces as a
twin.brain.errors.LLMError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from twin.domain.prompts import PromptMessage
from twin.domain.tools import ToolCall, ToolSpec, ToolUse

__all__ = ["LLM", "Completion", "CompletionStream", "ToolBox", "ToolUser"]


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished model call. `usage_estimated` is True when the provider reported no usage
    and the token counts are twin's own estimates."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    provider: str
    finish_reason: str | None = None
    usage_estimated: bool = False
    tool_uses: tuple[ToolUse, ...] = ()  # the tools called while answering, in order


class CompletionStream:
    """An async iterator of text pieces; `completion` is set once the stream is exhausted.

    Adapters build it from an async generator that yields `str` pieces and, last, one
    `Completion` carrying the usage.
    """

    def __init__(self, source: AsyncIterator[str | Completion]) -> None:
        self._source = source
        self.completion: Completion | None = None

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> str:
        while True:
            item = await self._source.__anext__()
            if isinstance(item, Completion):
                self.completion = item
                continue
            if item:
                return item

    async def aclose(self) -> None:
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()


@runtime_checkable
class LLM(Protocol):
    """A chat-completion provider."""

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def complete(
        self,
        messages: Sequence[PromptMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        """One completion. With `json_schema` the provider is asked for JSON matching it
        (as far as the provider supports it; the caller still parses tolerantly)."""
        ...

    def stream(
        self,
        messages: Sequence[PromptMessage],
        *,
        max_tokens: int,
        temperature: float,
    ) -> CompletionStream:
        """Plain-text completion delivered piece by piece; usage at the end when available."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class ToolBox(Protocol):
    """The tools a model may call while answering (twin.services.tools.HttpTools)."""

    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    @property
    def max_calls(self) -> int: ...

    async def call(self, call: ToolCall) -> ToolUse:
        """Run one call; a failure is a ToolUse with `ok=False` (the model is told), never
        an exception."""
        ...


@runtime_checkable
class ToolUser(Protocol):
    """A provider that can let the model call tools (OpenAI tools, Gemini function calling):
    it calls the model, runs the calls it asks for (at most `tools.max_calls`), gives it the
    results, and returns the final completion with the tools used and the usage of every
    round."""

    async def complete_with_tools(
        self,
        messages: Sequence[PromptMessage],
        *,
        tools: ToolBox,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion: ...
