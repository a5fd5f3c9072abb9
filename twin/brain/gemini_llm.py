"""Gemini through the maintained `google-genai` SDK.

The SDK is given its own `httpx.AsyncClient`: with aiohttp installed the SDK would otherwise use
aiohttp, whose connection-error path sleeps 1–10 s and retries by itself. With httpx and no
`retry_options` the SDK makes exactly one attempt and `ResilientLLM` owns retrying.
System messages become `system_instruction`; user/assistant messages become contents with the
roles user/model (consecutive same-role messages merged, as Gemini expects turns to alternate).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from twin.brain._http import parse_duration
from twin.brain.errors import LLMError, status_error
from twin.brain.port import Completion, CompletionStream, ToolBox
from twin.domain.prompts import PromptMessage, prompt_tokens
from twin.domain.tokens import estimate_tokens
from twin.domain.tools import ToolCall, ToolUse
from twin.retry import parse_retry_after

__all__ = ["GeminiLLM", "translate_error"]

log = logging.getLogger("twin.brain.gemini")

SchemaField = Literal["response_json_schema", "response_schema", "none"]


def _to_contents(
    messages: Sequence[PromptMessage],
) -> tuple[str | None, list[types.Content]]:
    system_parts = [m.content for m in messages if m.role == "system"]
    contents: list[types.Content] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1].role == role:
            previous = contents[-1].parts or []
            contents[-1] = types.Content(
                role=role, parts=[*previous, types.Part(text=message.content)]
            )
        else:
            contents.append(types.Content(role=role, parts=[types.Part(text=message.content)]))
    if contents and contents[0].role == "model":
        # Gemini wants the conversation to open with a user turn
        contents.insert(0, types.Content(role="user", parts=[types.Part(text="…")]))
    system = "\n\n".join(system_parts) if system_parts else None
    return system, contents


def _openapi_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """JSON schema → the OpenAPI subset of `response_schema` (no additionalProperties)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "additionalProperties":
            continue
        if isinstance(value, Mapping):
            out[key] = (
                {k: _openapi_schema(v) if isinstance(v, Mapping) else v for k, v in value.items()}
                if key == "properties"
                else _openapi_schema(value)
            )
        else:
            out[key] = value
    return out


class GeminiLLM:
    """`LLM` over `POST {base_url}/{api_version}/models/{model}:generateContent` (and
    `:streamGenerateContent?alt=sse`).

    `schema_field` chooses how a JSON schema is sent: "response_json_schema" (full JSON Schema,
    Gemini 2.x), "response_schema" (the older OpenAPI subset) or "none" (JSON mime type only).
    `thinking_budget` (tokens, 0 = off where the model allows) keeps thinking models from
    spending the whole output limit on thoughts.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 30.0,
        api_version: str | None = None,
        provider: str = "gemini",
        schema_field: SchemaField = "response_json_schema",
        thinking_budget: int | None = None,
    ) -> None:
        self._model = model
        self._provider = provider
        self._schema_field = schema_field
        self._thinking_budget = thinking_budget
        self._http = httpx.AsyncClient(timeout=timeout)
        options = types.HttpOptions(
            base_url=base_url,
            api_version=api_version,
            timeout=max(1, int(timeout * 1000)),
            httpx_async_client=self._http,
        )
        self._client = genai.Client(api_key=api_key or "not-needed", http_options=options)

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()

    def _config(
        self,
        system: str | None,
        max_tokens: int,
        temperature: float,
        json_schema: Mapping[str, Any] | None,
    ) -> types.GenerateContentConfig:
        config: dict[str, Any] = {
            "system_instruction": system,
            "max_output_tokens": max_tokens,
            "temperature": temperature,
        }
        if json_schema is not None:
            config["response_mime_type"] = "application/json"
            if self._schema_field == "response_json_schema":
                config["response_json_schema"] = dict(json_schema)
            elif self._schema_field == "response_schema":
                config["response_schema"] = _openapi_schema(json_schema)
        if self._thinking_budget is not None:
            config["thinking_config"] = types.ThinkingConfig(thinking_budget=self._thinking_budget)
        return types.GenerateContentConfig(**config)

    async def complete(
        self,
        messages: Sequence[PromptMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        system, contents = _to_contents(messages)
        config = self._config(system, max_tokens, temperature, json_schema)
        try:
            response = await self._client.aio.models.generate_content(
                model=self._model, contents=contents, config=config
            )
        except (genai_errors.APIError, httpx.HTTPError) as exc:
            raise self._translate(exc) from exc
        text = _text_of(response)
        return self._completion(
            messages, text, response.usage_metadata, response, _finish(response)
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
        """Function calling, our loop (the SDK's automatic calling is off): rounds of the
        model asking for functions and getting their results, at most `tools.max_calls`
        calls; then it must answer (mode NONE). Gemini does not combine function calling with
        a JSON response type, so the JSON comes from the prompt's instructions (the caller
        parses tolerantly). The usage is every round's."""
        del json_schema  # see the docstring
        system, contents = _to_contents(messages)
        declarations = [
            types.FunctionDeclaration(
                name=spec.name,
                description=spec.description,
                parameters_json_schema=dict(spec.parameters),
            )
            for spec in tools.specs
        ]
        base = self._config(system, max_tokens, temperature, None)
        uses: list[ToolUse] = []
        prompt = output = 0
        while True:
            exhausted = len(uses) >= tools.max_calls
            config = base.model_copy(
                update={
                    "tools": [types.Tool(function_declarations=declarations)],
                    "automatic_function_calling": types.AutomaticFunctionCallingConfig(
                        disable=True
                    ),
                    "tool_config": types.ToolConfig(
                        function_calling_config=types.FunctionCallingConfig(
                            mode="NONE" if exhausted else "AUTO"
                        )
                    ),
                }
            )
            try:
                response = await self._client.aio.models.generate_content(
                    model=self._model, contents=contents, config=config
                )
            except (genai_errors.APIError, httpx.HTTPError) as exc:
                raise self._translate(exc) from exc
            usage = response.usage_metadata
            if usage is not None:
                prompt += usage.prompt_token_count or 0
                output += (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
            calls = response.function_calls or []
            if not calls or exhausted or not response.candidates:
                break
            contents.append(response.candidates[0].content)
            results = []
            for asked in calls:
                use = await tools.call(
                    ToolCall(asked.id or asked.name or "", asked.name or "", dict(asked.args or {}))
                )
                uses.append(use)
                results.append(
                    types.Part.from_function_response(
                        name=asked.name or "", response={"result": use.result}
                    )
                )
            contents.append(types.Content(role="user", parts=results))
        text = _text_of(response)
        final = self._completion(messages, text, None, response, _finish(response))
        return dataclasses.replace(
            final,
            prompt_tokens=prompt or final.prompt_tokens,
            completion_tokens=output or final.completion_tokens,
            usage_estimated=not (prompt and output),
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
        system, contents = _to_contents(messages)
        config = self._config(system, max_tokens, temperature, None)
        pieces: list[str] = []
        usage = None
        last: types.GenerateContentResponse | None = None
        finish: str | None = None
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=self._model, contents=contents, config=config
            )
            try:
                async for chunk in stream:
                    last = chunk
                    if chunk.usage_metadata is not None:
                        usage = chunk.usage_metadata
                    finish = _finish(chunk) or finish
                    piece = _text_of(chunk)
                    if piece:
                        pieces.append(piece)
                        yield piece
            finally:
                await stream.aclose()
        except (genai_errors.APIError, httpx.HTTPError) as exc:
            raise self._translate(exc) from exc
        yield self._completion(messages, "".join(pieces), usage, last, finish)

    def _completion(
        self,
        messages: Sequence[PromptMessage],
        text: str,
        usage: types.GenerateContentResponseUsageMetadata | None,
        response: types.GenerateContentResponse | None,
        finish: str | None,
    ) -> Completion:
        prompt_count = usage.prompt_token_count if usage else None
        output_count = None
        if usage is not None and (
            usage.candidates_token_count is not None or usage.thoughts_token_count
        ):
            output_count = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        model = (response.model_version if response is not None else None) or self._model
        return Completion(
            text=text,
            prompt_tokens=prompt_count if prompt_count is not None else prompt_tokens(messages),
            completion_tokens=output_count if output_count is not None else estimate_tokens(text),
            model=model,
            provider=self._provider,
            finish_reason=finish,
            usage_estimated=prompt_count is None or output_count is None,
        )

    def _translate(self, exc: Exception) -> LLMError:
        return translate_error(exc, self._provider)


def translate_error(exc: Exception, name: str) -> LLMError:
    """The SDK's (or httpx's) exception as the brain's error (also the embeddings adapter's)."""
    if isinstance(exc, httpx.TimeoutException):
        return LLMError(f"{name}: request timed out", provider=name, retryable=True)
    if isinstance(exc, httpx.HTTPError):
        return LLMError(f"{name}: connection failed: {exc!r}", provider=name, retryable=True)
    assert isinstance(exc, genai_errors.APIError)
    status = exc.code
    headers = getattr(getattr(exc, "response", None), "headers", None)
    retry_after = parse_retry_after(headers) or _retry_info(exc.details)
    message = f"{name}: HTTP {status} {exc.status or ''}: {exc.message or ''}".strip()
    return status_error(message, provider=name, status=status, retry_after=retry_after)


def _text_of(response: types.GenerateContentResponse) -> str:
    """Concatenated text parts of the first candidate, without thoughts."""
    if not response.candidates:
        return ""
    content = response.candidates[0].content
    if content is None or not content.parts:
        return ""
    return "".join(part.text for part in content.parts if part.text and not part.thought)


def _finish(response: types.GenerateContentResponse) -> str | None:
    if response.candidates and response.candidates[0].finish_reason is not None:
        return str(response.candidates[0].finish_reason.value).lower()
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return "blocked"
    return None


def _retry_info(details: Any) -> float | None:
    """RetryInfo.retryDelay from a google.rpc error body, if any."""
    error = details.get("error", details) if isinstance(details, Mapping) else None
    items = error.get("details") if isinstance(error, Mapping) else None
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith("RetryInfo"):
            return parse_duration(item.get("retryDelay"))
    return None
