"""The HTTP chat channel: `POST /api/chat` (n8n, scripts, web widgets), `POST /api/debug` (echo
for wiring a workflow up) and `GET /` (what this daemon is). The conversation logic is
twin.channels.http_chat; these views parse, call and render."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from pydantic import Field

from twin import __version__, keys
from twin.api.context import current_request_id
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.channels.http_chat import ChatRequest

routes = RouteTable(tags=("chat",))
log = logging.getLogger("twin.channels.http_chat")

_ID = dict(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|cookie|signature|credential", re.IGNORECASE)


class ChatIn(ApiModel):
    message: str = Field(min_length=1, max_length=100_000, examples=["Hi! Are you open today?"])
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


@routes.post("/api/chat", name="api_chat", summary="Chat with the twin (one answer)")
async def api_chat(request: web.Request, body: ChatIn) -> ChatOut:
    """Answer `message` in the conversation named by `thread_id` (else `chat_id`; with neither,
    a new thread is started and its id returned). The thread remembers its turns and a rolling
    summary across restarts. Requests on one thread are answered in arrival order, each seeing
    the answers before it. 413 over `[channels.chat] max_message_chars`; 503 when the model is
    unavailable (nothing is answered later: send the message again)."""
    chat = request.app.get(keys.HTTP_CHAT)
    if chat is None or not chat.enabled:
        raise ApiError(404, "The HTTP chat channel is not enabled ([channels.chat] enabled).")
    limit = request.app[keys.SETTINGS].channels.chat.max_message_chars
    if len(body.message) > limit:
        raise ApiError(413, f"message is longer than {limit} characters")
    name = body.metadata.get("user_name") or body.metadata.get("name")
    answer = await chat.answer(
        ChatRequest(
            message=body.message,
            thread_id=body.thread_id,
            chat_id=body.chat_id,
            user_id=body.user_id,
            user_name=name[:128] if isinstance(name, str) and name.strip() else None,
        )
    )
    return ChatOut(
        response=answer.text,
        thread_id=answer.thread_id,
        user_id=body.user_id,
        chat_id=body.chat_id,
        success=True,
        escalated=answer.escalated,
    )


class DebugOut(ApiModel):
    received: Any = Field(description="the JSON body as it arrived")
    request_id: str | None


@routes.post("/api/debug", name="api_debug", summary="Echo any JSON (wiring up n8n)")
async def api_debug(request: web.Request) -> DebugOut:
    """Answer any JSON body as it arrived, and log it with the values of secret-looking keys
    (password, token, key, secret, authorization…) masked. 400 when the body is not JSON."""
    try:
        received = await request.json()
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
    return InfoOut(name="twin", version=__version__, channels=channels)
