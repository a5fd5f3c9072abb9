"""Fake OpenAI chat completions for the unmodified `openai` SDK (base_url = fake.base_url + "/v1").

- POST /v1/chat/completions — JSON, or SSE when `"stream": true` (content deltas, a finish
  chunk, a usage chunk when `stream_options.include_usage`, then `[DONE]`).
- Replies come from a script (`queue_reply(...)`: text, a dict sent as JSON, or a callable of the
  request body), then from `respond_with(callable)` if set; otherwise the reply is derived from
  the last user message:
  ``echo: <its last line>`` — as a BrainReply-shaped JSON object when the request asked for JSON
  (`response_format` json_schema / json_object).
- The output limit (`max_completion_tokens` / `max_tokens`) is honoured with a rough 4 characters
  per token: a longer reply is cut and finishes with "length" (handy for truncated-JSON tests).
- usage: prompt_tokens = ceil(characters of all message contents / 4), completion_tokens likewise.
- Faults, latency and request recording come from FakeProviderServer.

Extending: other OpenAI routes (e.g. /v1/audio/*) are mounted with `add_routes(factory)` before
`start()`, or by a subclass overriding `routes()` and adding to `super().routes()`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientConnectionResetError, web

from tests.providers.base import FakeProviderServer


@dataclass(frozen=True)
class ToolCallReply:
    """A scripted answer asking for a tool (OpenAI `tool_calls`, Gemini `functionCall`)."""

    name: str
    arguments: dict[str, Any]


Reply = str | dict[str, Any] | ToolCallReply | Callable[[dict[str, Any]], "str | dict[str, Any]"]


def rough_tokens(text: str) -> int:
    """The fakes' token count: 4 characters per token, rounded up (not twin's estimator)."""
    return math.ceil(len(text) / 4) if text else 0


def last_user_line(messages: list[dict[str, Any]]) -> str:
    """The last line of the last user message that is not a fence or a timestamp line."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        for line in reversed(str(content or "").splitlines()):
            line = line.strip()
            if line and not line.startswith(("⟦", "[")):
                return line
        return ""
    return ""


def brain_json(text: str) -> dict[str, Any]:
    """A BrainReply-shaped object, as a well-behaved model would return."""
    return {
        "text": text,
        "requires_human": False,
        "intent": "smalltalk",
        "confidence": 0.9,
        "end_conversation": False,
    }


class ReplyScript:
    """The reply queue shared by the chat fakes."""

    def __init__(self) -> None:
        self.queue: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], str | dict[str, Any]] | None = None

    def queue_reply(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def tool_call(self) -> ToolCallReply | None:
        """The next scripted reply when it asks for a tool (taken from the queue)."""
        if self.queue and isinstance(self.queue[0], ToolCallReply):
            return self.queue.popleft()  # type: ignore[return-value]
        return None

    def next(self, body: dict[str, Any], last_line: str, wants_json: bool) -> str:
        item: Reply | None = None
        if self.queue:
            item = self.queue.popleft()
        elif self.responder is not None:
            item = self.responder
        if item is not None:
            if callable(item):
                item = item(body)
            return json.dumps(item, ensure_ascii=False) if isinstance(item, dict) else str(item)
        echo = f"echo: {last_line[:200]}"
        return json.dumps(brain_json(echo), ensure_ascii=False) if wants_json else echo


def split_pieces(text: str, size: int = 3) -> list[str]:
    """Stream pieces: groups of `size` words, whitespace kept, so they join back exactly."""
    words = text.split(" ")
    pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)] or [""]


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status
    )


class FakeOpenAI(FakeProviderServer):
    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.script = ReplyScript()
        self.chat_requests: list[dict[str, Any]] = []  # decoded bodies, in arrival order
        # Streams: with `stream_gate` set, each stream waits on it after its first piece; a
        # stream the client closed before its end is counted in `streams_closed`.
        self.stream_gate: asyncio.Event | None = None
        self.first_piece_at: list[float] = []  # time.perf_counter() of each stream's first piece
        self.streams_closed = 0
        self.stream_closed = asyncio.Event()
        self._route_factories: list[Callable[[], list[web.RouteDef]]] = []

    # -- routes ----------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        table = [web.post("/v1/chat/completions", self.chat_completions)]
        for factory in self._route_factories:
            table.extend(factory())
        return table

    def add_routes(self, factory: Callable[[], list[web.RouteDef]]) -> None:
        """Mount more routes (call before start()), e.g. `lambda: openai_audio_routes(audio)`."""
        self._route_factories.append(factory)

    # -- scripting -------------------------------------------------------------------------------
    def queue_reply(self, *replies: Reply) -> None:
        """Script the next replies: raw text, a dict (sent as JSON text) or a callable(body)."""
        self.script.queue_reply(*replies)

    def respond_with(self, responder: Callable[[dict[str, Any]], str | dict[str, Any]]) -> None:
        """Answer every request without a queued reply with `responder(body)`."""
        self.script.responder = responder

    @property
    def last_messages(self) -> list[dict[str, Any]]:
        return self.chat_requests[-1]["messages"] if self.chat_requests else []

    def _closed_early(self) -> None:
        self.streams_closed += 1
        self.stream_closed.set()

    # -- handler ---------------------------------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        if self.api_key is not None and request.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        body = rec.json if isinstance(rec.json, dict) else None
        if body is None or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "'messages' is required")
        if not body.get("model"):
            return _error(400, "'model' is required")
        self.chat_requests.append(body)

        asked = self.script.tool_call() if body.get("tool_choice") != "none" else None
        if asked is not None:
            return self._tool_call(body, asked)
        fmt = body.get("response_format") or {}
        wants_json = fmt.get("type") in ("json_schema", "json_object")
        text = self.script.next(body, last_user_line(body["messages"]), wants_json)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and rough_tokens(text) > limit:
            text, finish = text[: limit * 4], "length"
        prompt = sum(rough_tokens(str(m.get("content") or "")) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": rough_tokens(text),
            "total_tokens": prompt + rough_tokens(text),
        }
        ident = f"chatcmpl-fake{len(self.chat_requests)}"
        created = int(time.time())
        if body.get("stream"):
            return await self._stream(request, body, ident, created, text, finish, usage)
        return web.json_response(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
        )

    def _tool_call(self, body: dict[str, Any], asked: ToolCallReply) -> web.Response:
        if asked.name not in [t["function"]["name"] for t in body.get("tools") or []]:
            return _error(400, f"no tool named {asked.name} was declared")
        call = {
            "id": f"call_{len(self.chat_requests)}",
            "type": "function",
            "function": {"name": asked.name, "arguments": json.dumps(asked.arguments)},
        }
        return web.json_response(
            {
                "id": f"chatcmpl-fake{len(self.chat_requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                        "logprobs": None,
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        ident: str,
        created: int,
        text: str,
        finish: str,
        usage: dict[str, int],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        async def send(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            await response.write(f"data: {data}\n\n".encode())

        try:
            await send(chunk({"role": "assistant", "content": ""}))
            for index, piece in enumerate(split_pieces(text)):
                if index == 0:
                    self.first_piece_at.append(time.perf_counter())
                await send(chunk({"content": piece}))
                if index == 0 and self.stream_gate is not None:
                    await self.stream_gate.wait()
            await send(chunk({}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                await send(
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body["model"],
                        "choices": [],
                        "usage": usage,
                    }
                )
            await send("[DONE]")
        except (ConnectionResetError, ClientConnectionResetError):
            self._closed_early()
            return response
        if request.transport is None or request.transport.is_closing():
            self._closed_early()
            return response
        await response.write_eof()
        return response
