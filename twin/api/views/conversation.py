"""The conversation API for business integrations (`/api/v1/conversation/*`): chat in sessions
of a user, list a user's sessions, page through a session, hand a session to a person. The
logic is twin.channels.conversation_api; these views parse, call and render."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.auth import guard_channel
from twin.api.errors import ApiError
from twin.api.ratelimit import count_group
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.chat import MAX_MESSAGE_CHARS
from twin.channels.conversation_api import ConversationApi

routes = RouteTable(tags=("conversation",))

_ID = dict(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")


class ConversationIn(ApiModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, examples=["Do you ship?"])
    user_id: str = Field(description="the user in your system", **_ID)
    session_id: str | None = Field(None, description="continue this session; else a new one", **_ID)
    platform: str = Field(description="where the user is (telegram, web, whatsapp …)", **_ID)
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="what you know of the user, given to the brain as facts for this answer",
        examples=[{"name": "Anna", "plan": "premium"}],
    )


class Entity(ApiModel):
    type: Literal["phone", "email"]
    value: str


class ConversationOut(ApiModel):
    message: str = Field(description="the twin's answer (empty while escalated)")
    session_id: str
    intent: str = Field(description="the brain's reading of the user's message")
    entities: list[Entity] = Field(description="contacts the user gave (phone, e-mail)")
    confidence: float = Field(ge=0, le=1)
    requires_human: bool
    current_state: Literal["active", "escalated", "closed"]
    suggested_actions: list[str] = Field(
        description="handoff_to_human, save_contact, follow_up, close_session"
    )


def _api(request: web.Request) -> ConversationApi:
    api = request.app.get(keys.CONVERSATION_API)
    if api is None or not api.enabled:
        raise ApiError(404, "The conversation API is not enabled ([channels.conversation]).")
    section = request.app[keys.SETTINGS].channels.conversation
    guard_channel(request, section.instance, section.twin, "conversation API")
    return api


@routes.post(
    "/api/v1/conversation/chat",
    name="conversation_chat",
    summary="Talk with the twin in a user's session",
    scope="conversation",
)
async def conversation_chat(request: web.Request, body: ConversationIn) -> ConversationOut:
    """Answer `message` in the session (a new one without `session_id`), with the brain's
    intent, confidence and whether a person must answer; `entities`, `current_state` and
    `suggested_actions` are derived from them. A session handed to a person answers empty,
    `escalated`, until resumed (`POST /chats/{id}/resume {"account": "api"}`)."""
    api = _api(request)
    await count_group(request, "conversation", body.user_id, "user_id")
    if not api.conversations.answers:
        raise ApiError(503, "No language model is configured ([llm]): nothing can answer.")
    answer = await api.chat(
        body.message, body.user_id, body.platform, body.session_id, body.context
    )
    return ConversationOut(
        message=answer.message,
        session_id=answer.session_id,
        intent=answer.intent,
        entities=[Entity.model_validate(e) for e in answer.entities],
        confidence=min(1.0, max(0.0, answer.confidence)),
        requires_human=answer.requires_human,
        current_state=answer.current_state,  # type: ignore[arg-type]
        suggested_actions=answer.suggested_actions,
    )


class UserPath(ApiModel):
    user_id: str = Field(**_ID)


class SessionOut(ApiModel):
    session_id: str
    platform: str | None
    created_at: datetime
    updated_at: datetime | None = Field(description="the newest message's time")
    messages_count: int
    status: Literal["active", "escalated"]


class SessionsOut(ApiModel):
    user_id: str
    sessions: list[SessionOut]


@routes.get(
    "/api/v1/conversation/sessions/{user_id}",
    name="conversation_sessions",
    summary="A user's sessions",
    scope="conversation",
)
async def conversation_sessions(request: web.Request, path: UserPath) -> SessionsOut:
    """The user's sessions, newest first."""
    now = request.app[keys.CLOCK].now()
    api = _api(request)
    await count_group(request, "conversation", path.user_id, "user_id")
    rows = await api.sessions(path.user_id)
    return SessionsOut(
        user_id=path.user_id,
        sessions=[
            SessionOut(
                session_id=row.session_id,
                platform=row.data.get("platform"),
                created_at=row.created_at,
                updated_at=row.updated_at,
                messages_count=row.messages,
                status="escalated"
                if row.paused_until is not None and row.paused_until > now
                else "active",
            )
            for row in rows
        ],
    )


class SessionPath(ApiModel):
    session_id: str = Field(**_ID)


class HistoryQuery(ApiModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10**9)


class TurnOut(ApiModel):
    id: int
    role: Literal["user", "assistant"]
    content: str
    timestamp: datetime
    platform: str | None
    intent: str | None = Field(description="the brain's reading, on the twin's answers")
    confidence: float | None


class HistoryOut(ApiModel):
    session_id: str
    messages: list[TurnOut]
    total: int
    has_more: bool


@routes.get(
    "/api/v1/conversation/history/{session_id}",
    name="conversation_history",
    summary="A session's messages",
    scope="conversation",
)
async def conversation_history(
    request: web.Request, path: SessionPath, query: HistoryQuery
) -> HistoryOut:
    """The session's messages, oldest first, `limit` from `offset`; 404 for no such session."""
    rows, total, platform = await _api(request).history(path.session_id, query.limit, query.offset)
    return HistoryOut(
        session_id=path.session_id,
        messages=[
            TurnOut(
                id=row.id,
                role="user" if row.direction == "incoming" else "assistant",
                content=row.text,
                timestamp=row.date,
                platform=platform,
                intent=row.flags.get("intent"),
                confidence=row.flags.get("confidence"),
            )
            for row in rows
        ],
        total=total,
        has_more=query.offset + len(rows) < total,
    )


class EscalateIn(ApiModel):
    session_id: str = Field(**_ID)
    reason: str = Field(min_length=1, max_length=500)
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    context: dict[str, Any] = Field(default_factory=dict)


class EscalatedOut(ApiModel):
    session_id: str
    current_state: Literal["escalated"]


@routes.post(
    "/api/v1/conversation/escalate",
    name="conversation_escalate",
    summary="Hand a session to a person",
    scope="conversation",
)
async def conversation_escalate(request: web.Request, body: EscalateIn) -> EscalatedOut:
    """Pause the session until resumed, tell the owner on Telegram, and fire an
    `operator_requested` webhook when the external channel is on; 404 for no such session."""
    await _api(request).escalate(body.session_id, body.reason, body.priority, body.context)
    return EscalatedOut(session_id=body.session_id, current_state="escalated")
