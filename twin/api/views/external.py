"""The external messenger channel: its inbound endpoint (`POST /api/v1/external/messages`),
the outbox of webhooks (`GET /webhooks/deliveries`, `POST /webhooks/deliveries/{id}/
redeliver`) and the signed read-only links its webhooks carry (`GET /share/{token}`). The
channel is twin.channels.external; the sender twin.channels.webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.auth import guard_channel
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.chat import MAX_MESSAGE_CHARS
from twin.channels.external import ExternalChannel, ExternalMessage
from twin.db.records import DeliveryRecord
from twin.domain.models import Direction
from twin.domain.webhooks import open_share

routes = RouteTable(tags=("external",))

_ID = dict(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
Id = str | int  # the caller's ids: strings or numbers, kept as text


class ExternalIn(ApiModel):
    chat_id: Id = Field(description="the dialogue in your system (joins its context)")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, examples=["Do you deliver?"])
    task_id: Id | None = Field(None, description="echoed in the webhooks")
    channel_id: Id | None = Field(None, description="your channel; chat ids are unique within it")
    title: str | None = Field(None, max_length=128, description="the user's name")
    contacts: dict[str, Any] | list[Any] | str | None = Field(
        None, description="the user's contacts as you know them; echoed in the webhooks"
    )
    message_type: Literal["user", "operator"] = Field(
        "user",
        description="`operator`: a person answered in your system; stored as the owner's turn "
        "and the twin pauses in this dialogue",
    )


class AcceptedOut(ApiModel):
    message_id: int = Field(description="the stored message")
    thread_id: str = Field(description="the conversation (`channel_id:chat_id`, else `chat_id`)")


def _text(value: Id | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > 128 or any(ord(c) < 32 for c in text):
        raise ApiError(422, "ids are 1-128 printable characters", details=[("id", text[:32])])
    return text


def _channel(request: web.Request) -> ExternalChannel:
    channel = request.app.get(keys.EXTERNAL)
    if channel is None or not channel.enabled:
        raise ApiError(404, "The external channel is not enabled ([channels.external] enabled).")
    section = request.app[keys.SETTINGS].channels.external
    guard_channel(request, section.instance, section.twin, "external channel")
    return channel


@routes.post(
    "/api/v1/external/messages",
    name="external_message",
    summary="A message from the external messenger",
    scope="external",
    status=202,
)
async def external_message(request: web.Request, body: ExternalIn) -> AcceptedOut:
    """Store the user's message and answer it in the background: the twin's answer arrives
    at `[channels.external] webhook_url` (`wh_type: message`, or `operator_requested` when the
    twin hands the dialogue to a person; `dialog_closed` after a dialogue's last answer). The
    message is stored before this 202, so it is answered even across a restart. With
    `message_type: operator` the text is a person's answer: stored as the owner's turn, and
    the twin pauses in the dialogue until `POST /chats/{id}/resume`."""
    channel = _channel(request)
    if body.message_type == "user" and not channel.conversations.answers:
        raise ApiError(503, "No language model is configured ([llm]): nothing can answer.")
    accepted = await channel.receive(
        ExternalMessage(
            chat_id=_text(body.chat_id) or "",
            message=body.message,
            task_id=_text(body.task_id),
            channel_id=_text(body.channel_id),
            title=body.title.strip() if body.title and body.title.strip() else None,
            contacts=body.contacts,
            message_type=body.message_type,
        )
    )
    return AcceptedOut(message_id=accepted.message_id, thread_id=accepted.thread_id)


# --- the outbox ----------------------------------------------------------------------------------


class DeliveryOut(ApiModel):
    id: int
    state: Literal["pending", "delivered", "dead"]
    wh_type: str | None
    url: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    reply_id: int | None
    idempotency_key: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryOut:
        return cls(
            id=record.id,
            state=record.state,  # type: ignore[arg-type]
            wh_type=record.payload.get("wh_type"),
            url=record.url,
            attempts=record.attempts,
            next_attempt_at=record.next_attempt_at,
            last_status=record.last_status,
            last_error=record.last_error,
            created_at=record.created_at,
            delivered_at=record.delivered_at,
            reply_id=record.reply_id,
            idempotency_key=record.key,
            payload=record.payload,
        )


class DeliveriesQuery(ApiModel):
    state: Literal["pending", "delivered", "dead"] | None = None
    limit: int = Field(100, ge=1, le=1000)
    before: int | None = Field(None, ge=1, le=2**63 - 1, description="ids below this one (paging)")


class DeliveriesOut(ApiModel):
    deliveries: list[DeliveryOut]


class DeliveryPath(ApiModel):
    delivery_id: int = Field(ge=1, le=2**63 - 1)


@routes.get(
    "/webhooks/deliveries", name="webhook_deliveries", summary="Outbound webhooks",
    tags=("external",),
)
async def webhook_deliveries(request: web.Request, query: DeliveriesQuery) -> DeliveriesOut:
    """The outbox of outbound webhooks, newest first: pending (with the next attempt's time),
    delivered, or dead (given up after `[channels.external] max_age`, with the last error)."""
    repo = request.app[keys.DATABASE].repo
    records = await repo.list_deliveries(query.state, limit=query.limit, before=query.before)
    return DeliveriesOut(deliveries=[DeliveryOut.of(record) for record in records])


@routes.post(
    "/webhooks/deliveries/{delivery_id}/redeliver",
    name="webhook_redeliver",
    summary="Send an outbound webhook again",
    tags=("external",),
)
async def webhook_redeliver(request: web.Request, path: DeliveryPath) -> DeliveryOut:
    """Queue a delivered or dead webhook again, due now, with the same idempotency key (404:
    no such delivery; 409: it is queued already)."""
    repo = request.app[keys.DATABASE].repo
    record = await repo.redeliver(path.delivery_id, request.app[keys.CLOCK].now())
    sender = request.app[keys.SERVICES].get("webhooks")
    if sender is not None:
        sender.wake()
    return DeliveryOut.of(record)


# --- share links ---------------------------------------------------------------------------------


class SharedMessage(ApiModel):
    role: Literal["user", "twin", "owner"]
    text: str
    date: datetime


class SharedOut(ApiModel):
    thread_id: str | None
    title: str | None
    messages: list[SharedMessage]
    expires_note: str = "this link is read-only and expires"


class SharePath(ApiModel):
    token: str = Field(min_length=10, max_length=512, pattern=r"^[A-Za-z0-9_.-]+$")


@routes.get("/share/{token}", name="share", summary="A conversation, read-only", public=True)
async def share(request: web.Request, path: SharePath) -> SharedOut:
    """The conversation a webhook's `share_url` names, read-only, while the link is valid (it
    is signed and expires after `[channels.external] share_ttl`); 404 otherwise."""
    settings = request.app[keys.SETTINGS].channels.external
    secret = settings.webhook_secret
    opened = (
        open_share(secret.get_secret_value(), path.token, request.app[keys.CLOCK].now())
        if secret is not None
        else None
    )
    if opened is None:
        raise ApiError(404, "This link is not valid, or has expired.")
    account_id, chat_id = opened
    repo = request.app[keys.DATABASE].repo
    chat = await repo.get_chat(chat_id)
    if chat.account_id != account_id:
        raise ApiError(404, "This link is not valid, or has expired.")
    rows = await repo.history(account_id, chat_id, limit=200)
    messages = [
        SharedMessage(
            role="user"
            if m.direction is Direction.INCOMING
            else ("twin" if m.reply_id is not None else "owner"),
            text=m.text or m.transcript or "",
            date=m.date,
        )
        for m in sorted(rows, key=lambda m: (m.date, m.id))
        if (m.text or m.transcript)
    ]
    return SharedOut(thread_id=chat.external_id, title=chat.title, messages=messages)
