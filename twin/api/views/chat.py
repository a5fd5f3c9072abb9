"""The HTTP chat channel: `POST /api/chat` (n8n, scripts, web widgets), `POST /api/debug` (echo
for wiring a workflow up) and `GET /` (what this daemon is). The conversation logic is
twin.channels.http_chat; these views parse, call and render."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientConnectionResetError, web
from pydantic import Field

from twin import __version__, keys
from twin.api.auth import guard_channel
from twin.api.context import current_request_id
from twin.api.errors import ApiError, from_domain
from twin.api.validation import ApiModel, RouteTable
from twin.channels.http_chat import ChatAnswer, ChatRequest, HttpChat
from twin.errors import TwinError

routes = RouteTable(tags=("chat",))
MAX_MESSAGE_CHARS = 4000  # a chat message; longer is a 422 (TalkMe's turns too)
log = logging.getLogger("twin.channels.http_chat")

_ID = dict(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|cookie|signature|credential", re.IGNORECASE)


class ChatIn(ApiModel):
    message: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, examples=["Hi! Are you open today?"]
    )
    thread_id: str | None = Field(
        None, description="the conversation; else `chat_id`; else a new one", **_ID
    )
    chat_id: str | None = Field(None, description="the conversation when no thread_id", **_ID)
    user_id: str | None = Field(None, description="the caller's own id, echoed back", **_ID)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="free-form; `user_name` (or `name`) names the contact in the prompt",
        examples=[{"user_name": "Anna", "source": "n8n"}],
    )


class ChatOut(ApiModel):
    response: str = Field(description="the twin's answer (empty while the thread is escalated)")
    thread_id: str = Field(description="send it back to continue this conversation")
    user_id: str | None
    chat_id: str | None
    success: bool
    escalated: bool = Field(description="the brain asked for the owner: the thread is paused")


@routes.post("/api/chat", name="api_chat", summary="Chat with the twin (one answer)", scope="chat")
async def api_chat(request: web.Request, body: ChatIn) -> ChatOut:
    """Answer `message` in the conversation named by `thread_id` (else `chat_id`; with neither,
    a new thread is started and its id returned). The thread remembers its turns and a rolling
    summary across restarts. Requests on one thread are answered in arrival order, each seeing
    the answers before it. 503 when the model is unavailable (nothing is answered later: send
    the message again)."""
    answer = await _chat_channel(request, body).answer(_chat_request(body))
    return ChatOut(
        response=answer.text,
        thread_id=answer.thread,
        user_id=body.user_id,
        chat_id=body.chat_id,
        success=True,
        escalated=answer.escalated,
    )


STREAM_MEDIA_TYPE = "text/event-stream"
CLIENT_CHECK = 0.1  # seconds between looks at the client's connection while the model thinks


@routes.post(
    "/api/chat/stream",
    name="api_chat_stream",
    summary="Chat with the twin (answer streamed as SSE)",
    scope="chat",
    media_type=STREAM_MEDIA_TYPE,
)
async def api_chat_stream(request: web.Request, body: ChatIn) -> web.StreamResponse:
    """The same conversation as `POST /api/chat`, answered as Server-Sent Events while the
    model writes: `event: delta` with `{"text"}` pieces, then one `event: done` with
    `{"thread_id", "response", "escalated", "usage", "flags"}`; `event: error` with the error
    shape when generation fails after the stream began. A client that disconnects cancels the
    generation (the provider's stream is closed) and its partial text is kept on the job as
    cancelled, never as an answer. Browsers: read it with `fetch` (EventSource cannot POST)."""
    chat = _chat_channel(request, body)
    stream = chat.stream(_chat_request(body))
    response = web.StreamResponse(
        headers={"Content-Type": STREAM_MEDIA_TYPE, "Cache-Control": "no-cache"}
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        while True:
            item = await _next_or_gone(request, stream)
            if isinstance(item, ChatAnswer):
                await _send(response, "done", _done(item, body))
                break
            await _send(response, "delta", {"text": item})
    except (_ClientGone, ConnectionResetError, ClientConnectionResetError):
        await stream.aclose()  # ends the generation: the provider's stream is closed
        return response
    except asyncio.CancelledError:
        await asyncio.shield(stream.aclose())
        raise
    except TwinError as exc:
        await stream.aclose()
        error = from_domain(exc) or ApiError(500, "Internal error.")
        await _send(response, "error", _error_body(error))
    except Exception:
        await stream.aclose()
        log.exception("POST /api/chat/stream failed")
        await _send(response, "error", _error_body(ApiError(500, "Internal error.")))
    await response.write_eof()
    return response


class _ClientGone(Exception):
    pass


async def _next_or_gone(request: web.Request, stream: AsyncIterator[str | ChatAnswer]) -> Any:
    """The stream's next item, or _ClientGone as soon as the client's connection closes (the
    server does not cancel handlers on disconnect: it is looked at while the model thinks)."""
    step = asyncio.ensure_future(anext(stream))
    try:
        while True:
            done, _ = await asyncio.wait({step}, timeout=CLIENT_CHECK)
            if done:
                return step.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                raise _ClientGone
    except BaseException:  # gone, or the handler cancelled (servers that cancel on disconnect)
        if not step.done():
            step.cancel()  # inside the generation: it records the job as cancelled
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await asyncio.shield(step)
        raise


async def _send(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"event: {event}\ndata: {payload}\n\n".encode())


def _done(answer: ChatAnswer, body: ChatIn) -> dict[str, Any]:
    return {
        "thread_id": answer.thread,
        "response": answer.text,
        "user_id": body.user_id,
        "chat_id": body.chat_id,
        "escalated": answer.escalated,
        "usage": answer.usage,
        "flags": answer.flags,
    }


def _error_body(error: ApiError) -> dict[str, Any]:
    return {
        "error": {
            "type": error.type,
            "message": error.message,
            "details": [{"field": f, "error": e} for f, e in error.details],
            "request_id": current_request_id(),
        }
    }


def _chat_channel(request: web.Request, body: ChatIn) -> HttpChat:
    chat = request.app.get(keys.HTTP_CHAT)
    if chat is None or not chat.enabled:
        raise ApiError(404, "The HTTP chat channel is not enabled ([channels.chat] enabled).")
    settings = request.app[keys.SETTINGS].channels.chat
    guard_channel(request, settings.instance, settings.twin, "HTTP chat channel")
    if not chat.conversations.answers:
        raise ApiError(503, "No language model is configured ([llm]): nothing can answer.")
    return chat


def _chat_request(body: ChatIn) -> ChatRequest:
    name = body.metadata.get("user_name") or body.metadata.get("name")
    return ChatRequest(
        message=body.message,
        thread_id=body.thread_id,
        chat_id=body.chat_id,
        user_id=body.user_id,
        user_name=name[:128] if isinstance(name, str) and name.strip() else None,
    )


class DebugOut(ApiModel):
    received: Any = Field(description="the JSON body as it arrived")
    request_id: str | None


@routes.post(
    "/api/debug", name="api_debug", summary="Echo any JSON (wiring up n8n)", scope="chat"
)
async def api_debug(request: web.Request) -> DebugOut:
    """Answer any JSON body as it arrived (no body: null), and log it with the values of
    secret-looking keys (password, token, key, secret, authorization…) masked. 400 when the
    body is not JSON."""
    try:
        received = await request.json() if await request.read() else None
    except ValueError:
        raise ApiError(400, "the body is not JSON") from None
    log.info("POST /api/debug received %s", _masked(received))
    return DebugOut(received=received, request_id=current_request_id())


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "***" if isinstance(k, str) and _SECRET_KEY.search(k) else _masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


class InfoOut(ApiModel):
    name: str
    version: str
    channels: list[str] = Field(description="the channels this daemon answers on")


@routes.get("/", name="info", summary="What this daemon is", public=True)
async def info(request: web.Request) -> InfoOut:
    """Name, version and enabled channels; no secrets, no token needed."""
    settings = request.app[keys.SETTINGS]
    channels = ["telegram"]
    if settings.channels.chat.enabled:
        channels.append("http_chat")
    if settings.channels.talkme.enabled:
        channels.append("talkme")
    if settings.channels.external.enabled:
        channels.append("external")
    return InfoOut(name="twin", version=__version__, channels=channels)
