"""OpenAI (and OpenAI-compatible) chat completions through the official `openai` SDK.

Requests go through the SDK's client (`client.post(path, body=…, cast_to=…)`, the SDK's way to
make a request with a body it does not rewrite) rather than `chat.completions.create`: `create`
walks every message against the SDK's parameter types (`_transform_recursive`) to produce the
same JSON, and that walk cost more CPU than everything else twin does for a request, growing
with the conversation (bench/channels.py). The response is parsed into the same ChatCompletion
and the stream into the same chunks.

The calls without a stream (`complete`, `complete_with_tools`: a Telegram reply's) skip the
SDK altogether: `twin.brain.openai_post` makes the same request on aiohttp, from the SDK
client's own URL and headers, for about a third of the CPU.

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

from twin.brain.errors import LLMError, status_error
from twin.brain.openai_post import DETAIL_CHARS, ChatCompletionsPost, completion_fields
from twin.brain.port import Completion, CompletionStream, ToolBox
from twin.domain.prompts import PromptMessage, prompt_tokens
from twin.domain.tokens import estimate_tokens
from twin.domain.tools import ToolCall, ToolUse
from twin.errors import clip
from twin.retry import parse_retry_after

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
        self._timeout = timeout
        self._post: ChatCompletionsPost | None = None

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    async def aclose(self) -> None:
        try:
            if self._post is not None:
                await self._post.aclose()
        finally:
            await self._client.close()

    async def _complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One chat completion without a stream, as a JSON object (openai_post)."""
        if self._post is None:
            client = self._client
            headers = {k: v for k, v in client.default_headers.items() if isinstance(v, str)}
            headers["Authorization"] = f"Bearer {client.api_key}"
            url = str(client.base_url).rstrip("/") + COMPLETIONS
            self._post = ChatCompletionsPost(url, headers, self._timeout, self._provider)
        return await self._post.post(body)

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
        response = await self._complete(params)
        message, finish, usage = completion_fields(response)
        text = _content(message)
        return Completion(
            text=text,
            prompt_tokens=_tokens(usage, "prompt_tokens") if usage else prompt_tokens(messages),
            completion_tokens=(
                _tokens(usage, "completion_tokens") if usage else estimate_tokens(text)
            ),
            model=response.get("model") or self._model,
            provider=self._provider,
            finish_reason=finish,
            usage_estimated=usage is None,
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
            response = await self._complete(round_params)
            message, finish, usage = completion_fields(response)
            prompt += _tokens(usage, "prompt_tokens")
            completion += _tokens(usage, "completion_tokens")
            calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
            if not calls or exhausted:
                break
            conversation.append(
                {
                    "role": "assistant",
                    "content": message.get("content"),
                    "tool_calls": [_without_none(call) for call in calls],
                }
            )
            for call in calls:
                use = await tools.call(_tool_call(call))
                uses.append(use)
                conversation.append(
                    {"role": "tool", "tool_call_id": call.get("id"), "content": use.result}
                )
        text = _content(message)
        return Completion(
            text=text,
            prompt_tokens=prompt or prompt_tokens(messages),
            completion_tokens=completion or estimate_tokens(text),
            model=response.get("model") or self._model,
            provider=self._provider,
            finish_reason=finish,
            usage_estimated=usage is None,
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
        return status_error(message, provider=name, status=status, retry_after=retry_after)
    if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
        return LLMError(f"{name}: {_short(exc)}", provider=name, retryable=True)
    return LLMError(f"{name}: {_short(exc)}", provider=name, retryable=False)


def _short(exc: BaseException) -> str:
    return clip(str(exc), DETAIL_CHARS)


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" was a connection that could not be made: the aiohttp transport
    (httpx-aiohttp) reports a refused connection as a connect timeout."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, ConnectionError):  # ConnectionRefusedError, ConnectionResetError…
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tool_call(call: Mapping[str, Any]) -> ToolCall:
    """A tool call of the answer as the domain's (arguments that are not a JSON object: none)."""
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except (TypeError, ValueError):
        arguments = {}
    return ToolCall(
        str(call.get("id") or ""),
        str(function.get("name") or ""),
        arguments if isinstance(arguments, dict) else {},
    )


def _without_none(value: Any) -> Any:
    """The tool call sent back as the model gave it, without its null fields (as the SDK's
    `model_dump(exclude_none=True)`)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _tokens(usage: Mapping[str, Any] | None, field: str) -> int:
    value = usage.get(field) if usage is not None else None
    return value if isinstance(value, int) else 0
