"""The messaging API for business integrations (`/api/v1/messaging/*`): send through a
connected channel, keep a conversation's context per user, list the platforms this daemon has.

Platforms are this daemon's channels: `telegram` (a logged-in personal account: `account`),
`telegram_bot` (a connected bot, `account` = bot-<id>: the only one that sends inline
keyboards), `external` (the external messenger: the message goes out as its webhook), and the
channels answered in their own requests (`http_chat`, `talkme`, `api`), which keep context but
cannot be sent to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.auth import principal_of
from twin.api.errors import ApiError
from twin.api.ratelimit import count_group
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.chat import MAX_MESSAGE_CHARS
from twin.channels.records import peer_of
from twin.db.records import AccountRecord, ChatRecord
from twin.errors import NotFound
from twin.ports import Tx

routes = RouteTable(tags=("messaging",))

Platform = Literal["telegram", "telegram_bot", "external", "http_chat", "talkme", "api"]
TELEGRAM = ("telegram", "telegram_bot")  # a personal account, a bot: `account` names it
_ID = dict(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
_ACCOUNT = dict(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class Button(ApiModel):
    text: str = Field(min_length=1, max_length=64)
    callback_data: str | None = Field(None, max_length=64)
    url: str | None = Field(None, max_length=2048)


class SendIn(ApiModel):
    platform: Platform
    chat_id: str = Field(
        description="telegram: a chat id, @username or +phone; else the conversation's id", **_ID
    )
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    message_type: Literal["text", "operator", "bot"] = "text"
    inline_keyboard: list[list[Button]] | None = Field(
        None, description="telegram_bot only: a personal account cannot send one (422)"
    )
    priority: Literal["low", "normal", "high"] = "normal"
    allow_first_contact: bool = Field(
        False,
        description="telegram: a message to a user the account never exchanged messages with "
        "is refused (403) unless this is true ([safety] first_contacts_daily a day)",
    )
    account: str = Field(
        "default",
        description="the Telegram account (telegram) or bot (telegram_bot: bot-<id>)",
        **_ACCOUNT,
    )


class SendOut(ApiModel):
    success: bool
    message_id: int = Field(description="the stored message")
    platform_message_id: int | None = Field(description="the platform's own id, when it has one")
    delivery_status: Literal["sent", "queued"] = Field(
        description="sent (Telegram accepted it) or queued (a webhook on its way)"
    )
    sent_at: datetime


async def _instance(request: web.Request, platform: str, account: str) -> AccountRecord:
    """The account row the platform's conversations belong to (404/403 like the control API)."""
    settings = request.app[keys.SETTINGS].channels
    repo = request.app[keys.DATABASE].repo
    if platform in TELEGRAM:
        name = account
    else:
        section = {
            "external": settings.external,
            "http_chat": settings.chat,
            "talkme": settings.talkme,
            "api": settings.conversation,
        }[platform]
        if not section.enabled:
            raise ApiError(404, f"The {platform} channel is not enabled on this daemon.")
        name = section.instance
    principal = principal_of(request)
    if principal is not None and not principal.sees(name):
        raise ApiError(404, f"There is no {platform} conversation for this API key's account.")
    if platform in TELEGRAM:
        record = await repo.get_account(name)  # NotFound: 404
        if record.channel != platform:
            what = "Telegram account" if platform == "telegram" else "bot (bot-<id>)"
            raise ApiError(404, f"'{name}' is not a {what}.")
        return record
    return await repo.channel_instance(name, platform)


def _peer(platform: str, chat_id: str) -> int:
    if platform in TELEGRAM:
        if not chat_id.lstrip("-").isdigit() or abs(int(chat_id)) >= 2**63:
            raise ApiError(422, "a Telegram chat_id is a number", details=[("chat_id", chat_id)])
        return int(chat_id)
    return peer_of(chat_id)


def _telegram_chat(chat_id: str) -> int | str:
    """A Telegram chat to send to: its id, an @username or a +phone (as POST /send_message)."""
    if chat_id.startswith("@") or chat_id.startswith("+"):
        return chat_id
    return _peer("telegram", chat_id)


def _buttons(keyboard: list[list[Button]]) -> list[list[tuple[str, str]]]:
    """An inline keyboard as (label, callback data) rows (URL buttons are not sent by twin)."""
    if any(button.url for row in keyboard for button in row):
        raise ApiError(
            422,
            "URL buttons are not supported; use callback_data",
            details=[("inline_keyboard", "url")],
        )
    return [[(b.text, b.callback_data or b.text) for b in row] for row in keyboard]


@routes.post(
    "/api/v1/messaging/send",
    name="messaging_send",
    summary="Send a message through a connected channel",
    scope="messaging",
)
async def messaging_send(request: web.Request, body: SendIn) -> SendOut:
    """`telegram`: sent now as the owner of `account` (asked explicitly: never by the twin on
    its own), exactly once (twin.services.outbox). `external`: stored as the conversation's
    turn and POSTed to the messenger's webhook (`message_type` says whose: `bot` or
    `operator`). The other platforms answer only in their own requests: 422."""
    await count_group(request, "messaging", (body.platform, body.chat_id), "chat")
    if body.inline_keyboard is not None and body.platform != "telegram_bot":
        raise ApiError(
            422,
            "Inline keyboards can only be sent by Telegram bots (platform telegram_bot); a "
            "personal account cannot send them.",
            details=[("inline_keyboard", "bots only")],
        )
    now = request.app[keys.CLOCK].now()
    if body.platform in TELEGRAM:
        peer = _telegram_chat(body.chat_id)
        account_id = (await _instance(request, body.platform, body.account)).id  # 404
        account = await request.app[keys.ACCOUNTS].get(body.account)
        account.require_authorized()
        buttons = _buttons(body.inline_keyboard) if body.inline_keyboard else None
        sent = await request.app[keys.OUTBOX].send_text(
            account,
            account_id,
            peer,
            body.text,
            buttons,
            allow_first_contact=body.allow_first_contact,
        )
        return SendOut(
            success=True,
            message_id=sent.record_id,
            platform_message_id=sent.message_id,
            delivery_status="sent",
            sent_at=now,
        )
    if body.platform == "external":
        instance = await _instance(request, "external", body.account)
        external = request.app[keys.EXTERNAL]
        message_id = await external.push(
            instance,
            body.chat_id,
            body.text,
            "operator" if body.message_type == "operator" else "bot",
        )
        return SendOut(
            success=True,
            message_id=message_id,
            platform_message_id=None,
            delivery_status="queued",
            sent_at=now,
        )
    raise ApiError(
        422,
        f"The {body.platform} channel answers only in its own requests: nothing can be sent to it.",
        details=[("platform", body.platform)],
    )


class ContextPath(ApiModel):
    platform: Platform
    chat_id: str = Field(**_ID)
    user_id: str = Field(**_ID)


class ContextQuery(ApiModel):
    account: str = Field(
        "default", description="the Telegram account (platform telegram)", **_ACCOUNT
    )


class ContextIn(ApiModel):
    context: dict[str, Any] = Field(
        description="merged into the stored context (null deletes a key)"
    )
    account: str = Field("default", **_ACCOUNT)


class ContextOut(ApiModel):
    platform: Platform
    chat_id: str
    user_id: str
    state: Literal["active", "paused"]
    context: dict[str, Any]
    summary: str | None = Field(description="the conversation's rolling summary, if any")


def _context_out(path: ContextPath, chat: ChatRecord, now: datetime) -> ContextOut:
    stored = (chat.channel_data.get("contexts") or {}).get(path.user_id) or {}
    return ContextOut(
        platform=path.platform,
        chat_id=path.chat_id,
        user_id=path.user_id,
        state="paused" if chat.is_paused(now) else "active",
        context=dict(stored),
        summary=chat.summary,
    )


@routes.get(
    "/api/v1/messaging/context/{platform}/{chat_id}/{user_id}",
    name="messaging_context",
    summary="A conversation's state and a user's context",
    scope="messaging",
)
async def messaging_context(
    request: web.Request, path: ContextPath, query: ContextQuery
) -> ContextOut:
    """The conversation's state and what is stored about `user_id` in it (404: no such
    conversation). The conversation API gives the stored context to the brain as facts."""
    instance = await _instance(request, path.platform, query.account)
    try:
        chat = await request.app[keys.DATABASE].repo.get_chat_by_peer(
            instance.id, _peer(path.platform, path.chat_id)
        )
    except NotFound:
        raise NotFound(f"no {path.platform} conversation {path.chat_id}") from None
    return _context_out(path, chat, request.app[keys.CLOCK].now())


@routes.put(
    "/api/v1/messaging/context/{platform}/{chat_id}/{user_id}",
    name="messaging_context_put",
    summary="Merge into a user's context",
    scope="messaging",
)
async def messaging_context_put(
    request: web.Request, path: ContextPath, body: ContextIn
) -> ContextOut:
    """Merge `context` into what is stored about `user_id` in the conversation (created if it
    has no message yet; `null` deletes a key), in one transaction."""
    instance = await _instance(request, path.platform, body.account)
    peer = _peer(path.platform, path.chat_id)
    external_id = None if path.platform == "telegram" else path.chat_id

    def merge(tx: Tx) -> ChatRecord:
        chat, _ = tx.upsert_chat(instance.id, peer, kind="private", external_id=external_id)
        contexts = dict(chat.channel_data.get("contexts") or {})
        merged = {**(contexts.get(path.user_id) or {}), **body.context}
        contexts[path.user_id] = {k: v for k, v in merged.items() if v is not None}
        return tx.update_chat(chat.id, channel_data={**chat.channel_data, "contexts": contexts})

    chat = await request.app[keys.DATABASE].repo.transaction(merge)
    return _context_out(path, chat, request.app[keys.CLOCK].now())


class Capabilities(ApiModel):
    send: bool = Field(description="POST /api/v1/messaging/send can reach it")
    receive: bool
    inline_keyboard: bool
    voice: bool
    streaming: bool


class PlatformOut(ApiModel):
    platform: Platform
    name: str = Field(description="the account or channel instance")
    status: str
    capabilities: Capabilities


class PlatformsOut(ApiModel):
    platforms: list[PlatformOut]


@routes.get(
    "/api/v1/messaging/platforms",
    name="messaging_platforms",
    summary="The channels this daemon has",
    scope="messaging",
)
async def messaging_platforms(request: web.Request) -> PlatformsOut:
    """Only the real ones: every Telegram account (with its status) and every enabled
    channel, with what each can do."""
    settings = request.app[keys.SETTINGS]
    principal = principal_of(request)
    voice = request.app[keys.SERVICES].get("tts") is not None
    found: list[PlatformOut] = []
    for account in await request.app[keys.DATABASE].repo.list_accounts():
        if account.channel not in TELEGRAM:
            continue
        accounts = request.app.get(keys.ACCOUNTS)
        loaded = accounts.loaded(account.name) if accounts is not None else None
        connected = loaded is not None and loaded.connected and loaded.authorized
        status = "connected" if connected else str(account.status.value)
        found.append(
            PlatformOut(
                platform="telegram",
                name=account.name,
                status=status,
                capabilities=Capabilities(
                    send=True, receive=True, inline_keyboard=False, voice=voice, streaming=False
                ),
            )
        )
    request_only = Capabilities(
        send=False, receive=True, inline_keyboard=False, voice=False, streaming=False
    )
    channels = settings.channels
    for platform, section, capabilities in (
        (
            "external",
            channels.external,
            Capabilities(
                send=True, receive=True, inline_keyboard=False, voice=False, streaming=False
            ),
        ),
        ("http_chat", channels.chat, request_only.model_copy(update={"streaming": True})),
        ("talkme", channels.talkme, request_only),
        ("api", channels.conversation, request_only),
    ):
        if section.enabled:
            found.append(
                PlatformOut(
                    platform=platform,
                    name=section.instance,  # type: ignore[arg-type]
                    status="enabled",
                    capabilities=capabilities,
                )
            )
    if principal is not None and principal.account is not None:
        found = [p for p in found if p.name == principal.account]
    return PlatformsOut(platforms=found)
