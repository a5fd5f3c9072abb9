"""OpenAI (and OpenAI-compatible) chat completions through the official `openai` SDK.

Requests go through the SDK's client (`client.post(path, body=…, cast_to=…)`, the SDK's way to
make a request with a body it does not rewrite) rather than `chat.completions.create`: `create`
walks every message against the SDK's parameter types (`_transform_recursive`) to produce the
same JSON, and that walk cost more CPU than everything else twin does for a request, growing
with the conversation (bench/channels.py). The response is parsed into the same ChatCompletion
and the stream into the same chunks.

The SDK's own retries are off (`max_retries=0`): retrying, backoff and fallback are
`ResilientLLM`'s job, so one policy covers every provider. SDK exceptions become LLMErrors here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import openai
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from twin.brain.errors import LLMError, LLMRateLimited
from twin.brain.port import Completion, CompletionStream, ToolBox
from twin.domain.prompts import PromptMessage, prompt_tokens
from twin.domain.tokens import estimate_tokens
from twin.domain.tools import ToolCall, ToolUse
from twin.retry import is_retryable_status, parse_retry_after

__all__ = ["JsonMode", "OpenAILLM", "translate_error"]

COMPLETIONS = "/chat/completions"

log = logging.getLogger("twin.brain.openai")

JsonMode = Literal["json_schema", "json_object", "none"]
LimitParam = Literal["max_tokens", "max_completion_tokens"]


class OpenAILLM:
    """`LLM` over `POST {base_url}/chat/completions`.

    `json_mode` chooses how structured output is requested when the caller passes a schema:
    "json_schema" (strict structured outputs, OpenAI), "json_object" (JSON mode, what most
    OpenAI-compatible servers support) or "none" (rely on the prompt and the tolerant parser).
    `limit_param` is the name of the output limit: OpenAI's current "max_completion_tokens" or
    the classic "max_tokens" that compatible servers understand.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 30.0,
        json_mode: JsonMode = "json_schema",
        provider: str = "openai",
        limit_param: LimitParam = "max_completion_tokens",
        stream_usage: bool = True,
    ) -> None:
        self._model = model
        self._provider = provider
        self._json_mode = json_mode
        self._limit_param = limit_param
        self._stream_usage = stream_usage
        self._client = AsyncOpenAI(
            api_key=api_key or "not-needed",  # local OpenAI-compatible servers need no key
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            # The SDK's aiohttp transport (openai[aiohttp]): the same API, about half the CPU
            # per request of its default httpx/httpcore transport (bench/channels.py).
            http_client=DefaultAioHttpClient(timeout=timeout),
        )

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    async def aclose(self) -> None:
        await self._client.close()

    # -- requests ------------------------------------------------------------------------------
    def _params(
        self,
        messages: Sequence[PromptMessage],
        max_tokens: int,
        temperature: float,
        json_schema: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
            self._limit_param: max_tokens,
        }
        if json_schema is not None and self._json_mode == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "brain_reply", "schema": dict(json_schema), "strict": True},
            }
        elif json_schema is not None and self._json_mode == "json_object":
            params["response_format"] = {"type": "json_object"}
        return params

    async def complete(
        self,
        messages: Sequence[PromptMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        params = self._params(messages, max_tokens, temperature, json_schema)
        try:
            response = await self._client.post(COMPLETIONS, body=params, cast_to=ChatCompletion)
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        usage = response.usage
        estimated = usage is None
        return Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else prompt_tokens(messages),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(text),
            model=response.model or self._model,
            provider=self._provider,
            finish_reason=choice.finish_reason if choice is not None else None,
            usage_estimated=estimated,
        )

    async def complete_with_tools(
        self,
        messages: Sequence[PromptMessage],
        *,
        tools: ToolBox,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        """Rounds of the model asking for tools (`tool_calls`) and getting their results
        (`role: tool`), at most `tools.max_calls` calls; then it must answer (`tool_choice:
        none`). The usage is every round's."""
        params = self._params(messages, max_tokens, temperature, json_schema)
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": dict(spec.parameters),
                },
            }
            for spec in tools.specs
        ]
        conversation: list[dict[str, Any]] = list(params["messages"])
        uses: list[ToolUse] = []
        prompt = completion = 0
        while True:
            exhausted = len(uses) >= tools.max_calls
            round_params = {**params, "messages": conversation}
            if exhausted:
                round_params["tool_choice"] = "none"
            try:
                response = await self._client.post(
                    COMPLETIONS, body=round_params, cast_to=ChatCompletion
                )
            except openai.OpenAIError as exc:
                raise self._translate(exc) from exc
            if response.usage is not None:
                prompt += response.usage.prompt_tokens
                completion += response.usage.completion_tokens
            choice = response.choices[0] if response.choices else None
            calls = (choice.message.tool_calls or []) if choice is not None else []
            if not calls or exhausted:
                break
            conversation.append(
                {
                    "role": "assistant",
                    "content": choice.message.content,  # type: ignore[union-attr]
                    "tool_calls": [call.model_dump(exclude_none=True) for call in calls],
                }
            )
            for call in calls:
                use = await tools.call(_tool_call(call))
                uses.append(use)
                conversation.append(
                    {"role": "tool", "tool_call_id": call.id, "content": use.result}
                )
        text = (choice.message.content or "") if choice is not None else ""
        return Completion(
            text=text,
            prompt_tokens=prompt or prompt_tokens(messages),
            completion_tokens=completion or estimate_tokens(text),
            model=response.model or self._model,
            provider=self._provider,
            finish_reason=choice.finish_reason if choice is not None else None,
            usage_estimated=response.usage is None,
            tool_uses=tuple(uses),
        )

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
        params = self._params(messages, max_tokens, temperature, None)
        params["stream"] = True
        if self._stream_usage:
            params["stream_options"] = {"include_usage": True}
        pieces: list[str] = []
        usage = None
        model = self._model
        finish: str | None = None
        try:
            stream = await self._client.post(
                COMPLETIONS,
                body=params,
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=AsyncStream[ChatCompletionChunk],
            )
            try:
                async for chunk in stream:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        if choice.finish_reason:
                            finish = choice.finish_reason
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            pieces.append(piece)
                            yield piece
            finally:
                await stream.close()
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        text = "".join(pieces)
        yield Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else prompt_tokens(messages),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(text),
            model=model,
            provider=self._provider,
            finish_reason=finish,
            usage_estimated=usage is None,
        )

    # -- errors --------------------------------------------------------------------------------
    def _translate(self, exc: openai.OpenAIError) -> LLMError:
        return translate_error(exc, self._provider)


def translate_error(exc: openai.OpenAIError, name: str) -> LLMError:
    """The SDK's exception as the brain's error (also the embeddings adapter's)."""
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return LLMError(f"{name}: request timed out", provider=name, retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(f"{name}: connection failed: {exc}", provider=name, retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = parse_retry_after(exc.response.headers)
        message = f"{name}: HTTP {status}: {_short(exc)}"
        if status == 429:
            return LLMRateLimited(
                message, provider=name, status=status, retry_after=retry_after
            )
        return LLMError(
            message,
            provider=name,
            status=status,
            retryable=is_retryable_status(status),
            retry_after=retry_after,
        )
    if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
        return LLMError(f"{name}: {_short(exc)}", provider=name, retryable=True)
    return LLMError(f"{name}: {_short(exc)}", provider=name, retryable=False)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" was a connection that could not be made: the aiohttp transport
    (httpx-aiohttp) reports a refused connection as a connect timeout."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, ConnectionError):  # ConnectionRefusedError, ConnectionResetError…
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tool_call(call: Any) -> ToolCall:
    """The SDK's tool call as the domain's (arguments that are not a JSON object: none)."""
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError:
        arguments = {}
    return ToolCall(call.id, call.function.name, arguments if isinstance(arguments, dict) else {})
