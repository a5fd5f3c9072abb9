"""Retries (twin.retry's one policy), then a fallback provider, then LLMUnavailable.

Policy for one call:

* a *transient* failure (timeout, connection error, 408/409/429/5xx — `LLMError.retryable`) is
  retried up to `max_retries` times on the same provider, waiting the provider's Retry-After or
  full jitter (twin.retry). A Retry-After longer than `max_retry_after` is not waited out: the
  provider is abandoned at once;
* a *permanent* failure (400, 401, 404 …) is not retried;
* then the fallback provider (if any) gets the same treatment;
* if every provider failed and at least one failure was transient, `LLMUnavailable` is raised with
  `retry_after` = the shortest Retry-After any provider asked for (None if none did), so the
  pipeline can reschedule. If all failures were permanent the last LLMError is re-raised:
  rescheduling would not help.

Streams are retried the same way until the first piece of text arrives; after that an error
propagates (text already shown cannot be taken back).

`sleep` and `rng` are injectable, so tests neither wait nor depend on chance.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from twin.brain.errors import LLMError, LLMUnavailable
from twin.brain.port import LLM, Completion, CompletionStream, ToolBox, ToolUser
from twin.domain.prompts import PromptMessage
from twin.retry import RetryPolicy, Sleep, Verdict, retrying

__all__ = ["ResilientLLM"]

log = logging.getLogger("twin.brain.resilient")

T = TypeVar("T")


def _verdict(exc: BaseException) -> Verdict | None:
    if isinstance(exc, LLMError):
        return Verdict(exc.retryable, exc.retry_after)
    return None


class ResilientLLM:
    """An `LLM` that wraps a primary and an optional fallback provider (see module docstring)."""

    def __init__(
        self,
        primary: LLM,
        fallback: LLM | None = None,
        *,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.policy = RetryPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
        )
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not cryptography

    @property
    def provider(self) -> str:
        return self.primary.provider

    @property
    def model(self) -> str:
        return self.primary.model

    @property
    def providers(self) -> list[LLM]:
        return [self.primary] + ([self.fallback] if self.fallback is not None else [])

    async def aclose(self) -> None:
        for llm in self.providers:
            await llm.aclose()

    # -- the policy ------------------------------------------------------------------------------
    async def _run(self, call: Callable[[LLM], Awaitable[T]]) -> T:
        failures: list[LLMError] = []
        for llm in self.providers:
            try:
                return await retrying(
                    lambda llm=llm: call(llm),
                    verdict=_verdict,
                    policy=self.policy,
                    what=f"LLM {llm.provider} ({llm.model})",
                    log=log,
                    sleep=self._sleep,
                    rng=self._rng,
                )
            except LLMError as exc:
                failures.append(exc)
                log.warning("LLM provider %s (%s) failed: %s", llm.provider, llm.model, exc)
        raise self._give_up(failures)

    @staticmethod
    def _give_up(failures: list[LLMError]) -> LLMError:
        transient = [f for f in failures if f.retryable]
        if not transient:
            return failures[-1]
        hints = [f.retry_after for f in transient if f.retry_after is not None]
        summary = "; ".join(str(f) for f in failures)
        unavailable = LLMUnavailable(
            f"no LLM provider available: {summary}", retry_after=min(hints) if hints else None
        )
        unavailable.__cause__ = failures[-1]
        return unavailable

    # -- the LLM port --------------------------------------------------------------------------
    async def complete(
        self,
        messages: Sequence[PromptMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        async def call(llm: LLM) -> Completion:
            return await llm.complete(
                messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
            )

        return await self._run(call)

    async def complete_with_tools(
        self,
        messages: Sequence[PromptMessage],
        *,
        tools: ToolBox,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        """As `complete`, letting the model call `tools` where the provider can (a fallback
        that cannot answers without them). A retry runs the whole exchange again, tool calls
        included: tools should be safe to repeat (GET)."""

        async def call(llm: LLM) -> Completion:
            if isinstance(llm, ToolUser):
                return await llm.complete_with_tools(
                    messages, tools=tools, json_schema=json_schema, max_tokens=max_tokens,
                    temperature=temperature,
                )
            return await llm.complete(
                messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
            )

        return await self._run(call)

    def stream(
        self,
        messages: Sequence[PromptMessage],
        *,
        max_tokens: int,
        temperature: float,
    ) -> CompletionStream:
        return CompletionStream(self._stream(messages, max_tokens, temperature))

    async def _stream(
        self, messages: Sequence[PromptMessage], max_tokens: int, temperature: float
    ) -> AsyncIterator[str | Completion]:
        async def opened(llm: LLM) -> tuple[CompletionStream, str | None]:
            """Start a stream and wait for its first piece (so failures can still be retried)."""
            stream = llm.stream(messages, max_tokens=max_tokens, temperature=temperature)
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                return stream, None
            except BaseException:
                await stream.aclose()
                raise
            return stream, first

        stream, first = await self._run(opened)
        try:
            if first is not None:
                yield first
                async for piece in stream:
                    yield piece
            if stream.completion is not None:
                yield stream.completion
        finally:
            await stream.aclose()
