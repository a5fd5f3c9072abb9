"""The TalkMe voice-call webhook: `POST /webhook/talkme`, its health, stats and session delete.

These endpoints are not behind the API token: TalkMe proves itself as `[channels.talkme] auth`
says (a shared secret in a header, or an HMAC-SHA256 signature of the body with a timestamp),
and the API's admin tokens are accepted too. The conversation logic is twin.channels.talkme.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api import auth
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.chat import MAX_MESSAGE_CHARS
from twin.channels.talkme import Call, TalkMe

routes = RouteTable(tags=("talkme",))

_ID = dict(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")


class TalkMeIn(ApiModel):
    session_id: str = Field(description="the call", examples=["call-8f2c"], **_ID)
    user_id: str = Field(description="the caller: one conversation each", **_ID)
    message: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, examples=["Hello, are you open?"]
    )
    message_type: str = Field("text", max_length=32)
    phone_number: str | None = Field(None, max_length=32, examples=["+15551234567"])
    timestamp: str | None = Field(
        None, max_length=64, description="with session_id and message: the delivery's identity"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class TalkMeMeta(ApiModel):
    user_name: str | None = None
    phone: str | None = None


class TalkMeOut(ApiModel):
    message: str = Field(description="what the caller hears")
    session_id: str
    end_conversation: bool = Field(description="a goodbye, a finished request, or an escalation")
    metadata: TalkMeMeta


@routes.post("/webhook/talkme", name="talkme_webhook", summary="TalkMe call turn", public=True)
async def talkme_webhook(request: web.Request, body: TalkMeIn) -> TalkMeOut:
    """One turn of a call: the caller's words in, what they hear out, within
    `[channels.talkme] answer_deadline` (else the holding phrase; the answer is said at the
    next turn). The first message of a session gets the twin's greeting. The same delivery
    again (same session_id, timestamp and message) gets the same answer without a second
    generation. 401 without a valid secret, signature or admin token; 404 when the channel is
    not enabled; 503 when the model is unavailable."""
    talkme = await _authentic(request)
    if not talkme.conversations.answers:
        raise ApiError(503, "No language model is configured ([llm]): nothing can answer.")
    name = body.metadata.get("user_name") or body.metadata.get("name")
    said = await talkme.answer(
        Call(
            session_id=body.session_id,
            user_id=body.user_id,
            message=body.message,
            phone_number=body.phone_number,
            timestamp=body.timestamp,
            user_name=name[:128] if isinstance(name, str) and name.strip() else None,
        )
    )
    return TalkMeOut(
        message=said.message,
        session_id=said.session_id,
        end_conversation=said.end_conversation,
        metadata=TalkMeMeta(user_name=said.user_name, phone=said.phone),
    )


class HealthOut(ApiModel):
    status: str = Field(description="ok, or disabled")
    channel: str


@routes.get("/webhook/talkme/health", name="talkme_health", summary="TalkMe channel", public=True)
async def talkme_health(request: web.Request) -> HealthOut:
    """Whether the channel is enabled; no secret needed, nothing private."""
    talkme = request.app.get(keys.TALKME)
    enabled = talkme is not None and talkme.enabled
    return HealthOut(status="ok" if enabled else "disabled", channel="talkme")


class StatsQuery(ApiModel):
    minutes: float = Field(60.0, gt=0, le=60 * 24 * 31, description="the window, in minutes")


class SessionOut(ApiModel):
    user_id: str
    session_id: str | None
    phone: str | None
    messages: int = Field(description="messages received in the window")
    last_message_at: datetime | None


class StatsOut(ApiModel):
    window_minutes: float
    active_sessions: int
    users: int
    messages: int
    messages_per_session: float
    sessions: list[SessionOut]


@routes.get(
    "/webhook/talkme/stats", name="talkme_stats", summary="TalkMe sessions", public=True
)
async def talkme_stats(request: web.Request, query: StatsQuery) -> StatsOut:
    """Sessions with a message in the last `minutes`: how many, how many callers, messages per
    session. Same authentication as the webhook."""
    talkme = await _authentic(request)
    stats = await talkme.stats(query.minutes)
    return StatsOut(
        window_minutes=stats.window_minutes,
        active_sessions=stats.active_sessions,
        users=stats.users,
        messages=stats.messages,
        messages_per_session=round(stats.messages / stats.active_sessions, 2)
        if stats.active_sessions
        else 0.0,
        sessions=[
            SessionOut(
                user_id=s.user_id,
                session_id=s.session_id,
                phone=s.phone,
                messages=s.messages,
                last_message_at=s.last_message_at,
            )
            for s in stats.sessions
        ],
    )


class SessionPath(ApiModel):
    user_id: str = Field(**_ID)


class ForgottenOut(ApiModel):
    user_id: str
    deleted: bool


@routes.delete(
    "/webhook/talkme/session/{user_id}",
    name="talkme_session_delete",
    summary="End and forget a caller's session",
    public=True,
)
async def talkme_session_delete(request: web.Request, path: SessionPath) -> ForgottenOut:
    """End the caller's session and forget its memory (messages, jobs, summary); the next
    message starts afresh, with the greeting. 404 for an unknown caller."""
    talkme = await _authentic(request)
    await talkme.forget(path.user_id)
    return ForgottenOut(user_id=path.user_id, deleted=True)


async def _key_allows(request: web.Request, scope: str, talkme: TalkMe) -> bool:
    """An admin token, or a stored key with `scope` that is not bound to another account or
    twin than the channel's (these endpoints are not behind the API key check: TalkMe cannot
    always send one)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else request.headers.get("X-API-Key", "")
    if not given:
        return False
    admin = auth.configured_tokens(request.app[keys.SETTINGS].api.tokens)
    if auth.matching_token(given, admin) is not None:
        return True
    api_keys = request.app.get(keys.API_KEYS)
    if api_keys is None or not given.startswith("twin_"):
        return False
    principal = await api_keys.who(given, asyncio.get_running_loop().time())
    channel = talkme.settings
    return (
        principal is not None
        and principal.allows(scope)
        and principal.sees(channel.instance)
        and principal.twin in (None, channel.twin)
    )


async def _authentic(request: web.Request) -> TalkMe:
    """The channel, once the request proved it comes from TalkMe (or an admin)."""
    talkme = request.app.get(keys.TALKME)
    if talkme is None or not talkme.enabled:
        raise ApiError(404, "The TalkMe channel is not enabled ([channels.talkme] enabled).")
    settings = talkme.settings
    if await _key_allows(request, "webhook:talkme", talkme):
        return talkme
    if settings.auth == "none":
        return talkme
    assert settings.secret is not None  # the configuration refuses it otherwise
    secret = settings.secret.get_secret_value().encode()
    if settings.auth == "header":
        given = request.headers.get(settings.header, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, secret):
            raise ApiError(401, f"Missing or wrong {settings.header}.")
        return talkme
    stamp = request.headers.get(settings.timestamp_header, "")
    try:
        sent_at = float(stamp)
    except ValueError:
        raise ApiError(401, f"Missing or malformed {settings.timestamp_header}.") from None
    now = request.app[keys.CLOCK].now().timestamp()
    if abs(now - sent_at) > settings.replay_window:
        raise ApiError(401, "The signature's timestamp is outside the replay window.")
    body = await request.read()
    expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    given = request.headers.get(settings.signature_header, "").strip().lower()
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
        raise ApiError(401, f"Wrong {settings.signature_header}.")
    return talkme
