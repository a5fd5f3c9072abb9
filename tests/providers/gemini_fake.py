"""Fake Gemini API for the unmodified `google-genai` SDK (HttpOptions(base_url=fake.base_url)).

google-genai 1.x calls ``POST {base_url}/{api_version}/models/{model}:generateContent`` and
``…:streamGenerateContent?alt=sse`` (api_version "v1beta" by default, see
google/genai/models.py and _api_client.py), with the key in the `x-goog-api-key` header. The SSE
stream is ``data: {GenerateContentResponse JSON}`` events separated by blank lines.

Replies use the same script as FakeOpenAI (`queue_reply`); the default is ``echo: <last line of
the last user turn>``, as a BrainReply-shaped JSON object when `responseMimeType` is
application/json. usageMetadata counts 4 characters per token. `maxOutputTokens` is honoured
(finishReason MAX_TOKENS). Errors use Google's shape; `rate_limit_body(seconds)` builds a 429 body
with a RetryInfo detail for `fail_next(status=429, body=...)`.

Extending: other routes (e.g. the embeddings of tests/providers/embeddings_fake.py) are mounted
with `add_routes(factory)` before `start()`; they are tried before the generateContent catch-all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import ClientConnectionResetError, web

from tests.providers.base import FakeProviderServer
from tests.providers.openai_fake import Reply, ReplyScript, rough_tokens, split_pieces

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def rate_limit_body(seconds: float) -> dict[str, Any]:
    body = google_error(429, "Resource has been exhausted (e.g. check quota).")
    body["error"]["details"] = [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds:g}s"}
    ]
    return body


def _text_of(content: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in content.get("parts") or [] if isinstance(p, dict))


class FakeGemini(FakeProviderServer):
    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.script = ReplyScript()
        self.generate_requests: list[
            dict[str, Any]
        ] = []  # decoded bodies (+ _model, _method, _query)
        # Streams: with `stream_gate` set, each stream waits on it after its first piece; a
        # stream the client closed before its end is counted in `streams_closed`.
        self.stream_gate: asyncio.Event | None = None
        self.streams_closed = 0
        self.stream_closed = asyncio.Event()
        self._route_factories: list[Callable[[], list[web.RouteDef]]] = []

    def routes(self) -> list[web.RouteDef]:
        table: list[web.RouteDef] = []
        for factory in self._route_factories:  # before the catch-all, which would match them
            table.extend(factory())
        table.append(web.post("/{version}/models/{target}", self.models_call))
        return table

    def add_routes(self, factory: Callable[[], list[web.RouteDef]]) -> None:
        """Mount more routes (call before start()), e.g. `lambda: gemini_embeddings_routes(g)`."""
        self._route_factories.append(factory)

    def queue_reply(self, *replies: Reply) -> None:
        self.script.queue_reply(*replies)

    def respond_with(self, responder: Callable[[dict[str, Any]], str | dict[str, Any]]) -> None:
        self.script.responder = responder

    async def models_call(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return web.json_response(google_error(404, f"unknown method {method}"), status=404)
        if self.api_key is not None and request.headers.get("x-goog-api-key") != self.api_key:
            return web.json_response(google_error(401, "API key not valid."), status=401)
        body = rec.json if isinstance(rec.json, dict) else None
        contents = (body or {}).get("contents")
        if not isinstance(contents, list) or not contents:
            return web.json_response(google_error(400, "contents is not specified"), status=400)
        self.generate_requests.append(
            {**body, "_model": model, "_method": method, "_query": dict(request.query)}
        )

        calling = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
        asked = self.script.tool_call() if calling != "NONE" else None
        if asked is not None and method == "generateContent":
            declared = [
                f.get("name")
                for tool in body.get("tools") or []
                for f in tool.get("functionDeclarations") or []
            ]
            if asked.name not in declared:
                return web.json_response(
                    google_error(400, f"no function {asked.name} was declared"), status=400
                )
            part = {"functionCall": {"name": asked.name, "args": asked.arguments}}
            candidate = {
                "content": {"parts": [part], "role": "model"},
                "index": 0,
                "finishReason": "STOP",
            }
            usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
            return web.json_response(
                {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
            )

        config = body.get("generationConfig") or {}
        wants_json = config.get("responseMimeType") == "application/json"
        last_line = ""
        for content in reversed(contents):
            if content.get("role", "user") == "user":
                lines = [
                    ln.strip()
                    for ln in _text_of(content).splitlines()
                    if ln.strip() and not ln.strip().startswith(("⟦", "["))
                ]
                last_line = lines[-1] if lines else ""
                break
        text = self.script.next(body, last_line, wants_json)
        finish = "STOP"
        limit = config.get("maxOutputTokens")
        if isinstance(limit, int) and rough_tokens(text) > limit:
            text, finish = text[: limit * 4], "MAX_TOKENS"
        system = _text_of(body.get("systemInstruction") or {})
        prompt = rough_tokens(system) + sum(rough_tokens(_text_of(c)) for c in contents)
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": rough_tokens(text),
            "totalTokenCount": prompt + rough_tokens(text),
        }
        if method == "generateContent":
            return web.json_response(self._response(model, text, finish, usage))
        if request.query.get("alt") != "sse":  # the SDK always asks for SSE
            return web.json_response(google_error(400, "only alt=sse is faked"), status=400)

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces = split_pieces(text)
        try:
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                payload = self._response(
                    model, piece, finish if last else None, usage if last else None
                )
                data = json.dumps(payload, ensure_ascii=False)
                await response.write(f"data: {data}\r\n\r\n".encode())
                if index == 0 and self.stream_gate is not None:
                    await self.stream_gate.wait()
            await response.write_eof()
        except (ConnectionResetError, ClientConnectionResetError):
            self.streams_closed += 1
            self.stream_closed.set()
        return response

    @staticmethod
    def _response(
        model: str, text: str, finish: str | None, usage: dict[str, int] | None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish is not None:
            candidate["finishReason"] = finish
        payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
        if usage is not None:
            payload["usageMetadata"] = usage
        return payload
