"""Telegram account endpoints: login by code, status, dialogs, sending (a chat's stored
history: twin.api.views.history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, field_validator

from twin import keys
from twin.api.fields import ChatReference, Int64, Phone
from twin.api.ratelimit import login_attempt
from twin.api.validation import ApiModel, RouteTable
from twin.errors import Conflict, NotFound

routes = RouteTable(tags=("telegram",))

AccountName = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


# --- models -------------------------------------------------------------------------------------


class RequestCodeIn(ApiModel):
    phone: Phone
    account: str = AccountName
    force: bool = Field(
        False,
        description="log in again although the account is logged in: its current session "
        "is ended at Telegram first (without it: 409)",
    )


class RequestCodeOut(ApiModel):
    status: Literal["code_sent"]
    phone_code_hash: str
    type: str = Field(description="how Telegram delivered the code: app, sms, call, …")
    timeout: int | None = Field(None, description="seconds before another code may be asked for")


class VerifyCodeIn(ApiModel):
    phone: Phone
    code: str = Field(
        max_length=16,
        pattern=r"^[0-9](?:[ -]*[0-9])*$",
        description="the login code (digits; spaces and dashes between them are allowed)",
    )
    password: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="the two-step verification password, if the account has one (null: none)",
    )
    account: str = AccountName


class PasswordIn(ApiModel):
    password: str = Field(min_length=1, max_length=256)
    account: str = AccountName


class UserOut(ApiModel):
    id: int
    name: str
    username: str | None
    phone: str | None = Field(description="masked")


class LoginOut(ApiModel):
    status: Literal["authorized", "password_required"]
    user: UserOut | None = None
    hint: str | None = None


class AccountIn(ApiModel):
    account: str = AccountName


class StatusQuery(ApiModel):
    account: str = AccountName


class StatusOut(ApiModel):
    account: str
    configured: bool
    connected: bool = Field(
        description="whether the link to Telegram is up now (stays false while reconnecting)"
    )
    since: datetime | None = Field(None, description="when the current link state began")
    last_update_at: datetime | None = Field(
        None, description="when Telegram last delivered an update to this account"
    )
    reconnects: int = Field(0, description="link outages that ended with the link up again")
    authorized: bool
    user: UserOut | None
    pending_login: bool


class LogoutOut(ApiModel):
    status: Literal["logged_out"]


class DialogsIn(ApiModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000)
    account: str = AccountName


class DialogOut(ApiModel):
    id: int
    title: str
    username: str | None
    kind: str
    unread_count: int
    last_message: str | None
    last_message_at: datetime | None
    paused: bool
    paused_until: datetime | None


class DialogsOut(ApiModel):
    dialogs: list[DialogOut]
    limit: int
    offset: int


class SendMessageIn(ApiModel):
    chat: Int64 | ChatReference = Field(description='chat id, "@username" or "+phone"')
    text: str = Field(
        min_length=1,
        max_length=4096,
        # Not only whitespace, and no NUL (which PostgreSQL cannot store in text).
        pattern=r"^[^\x00]*[^\s\x00][^\x00]*$",
        description="not only whitespace, no NUL character; at most 4096 characters "
        "(Telegram counts UTF-16 units, so fewer of those outside the BMP)",
    )
    voice: bool = Field(False, description="send as a synthesized voice note ([tts] provider)")
    allow_first_contact: bool = Field(
        False,
        description="the twin never messages first: a message to a user this account never "
        "exchanged messages with is refused (403) unless this is true, and counts against "
        "[safety] first_contacts_daily (429 beyond it)",
    )
    account: str = AccountName

    @field_validator("chat")
    @classmethod
    def _chat_id_as_number(cls, value: int | str) -> int | str:
        # The pattern let through only ids of at most 18 digits, "@username" or "+phone".
        if isinstance(value, str) and not value.startswith(("@", "+")):
            return int(value)
        return value


class SendMessageOut(ApiModel):
    chat: int
    message_id: int | None
    voice: bool


# --- views --------------------------------------------------------------------------------------


def _user(user: Any) -> UserOut | None:
    return UserOut(**user.public()) if user is not None else None


async def _account(request: web.Request, name: str, *, connect: bool = True) -> Any:
    """An existing account (404 for an unknown name: only a login creates one)."""
    return await request.app[keys.ACCOUNTS].get(name, connect=connect)


@routes.post("/auth/request_code", name="auth_request_code", summary="Send a login code")
async def request_code(request: web.Request, body: RequestCodeIn) -> RequestCodeOut:
    """Ask Telegram to send a login code; a second request for the same phone replaces it.
    The only request that creates an account (named by `account`, default `default`). An
    account already logged in answers 409, unless `force` (its session is ended first)."""
    await login_attempt(request, "request_code", body.account)
    account = await request.app[keys.ACCOUNTS].for_login(body.account)
    if account.authorized:
        if not body.force:
            me = account.me
            raise Conflict(
                f"account {body.account!r} is already logged in"
                + (f" (user {me.id})" if me is not None else "")
                + "; to log in again, ending its current session, send force: true"
            )
        await account.logout()  # asked for explicitly: the old session ends first
        await _account_event(request, "account.logged_out", body.account)
        account = await request.app[keys.ACCOUNTS].for_login(body.account)
    sent = await account.request_code(body.phone)
    return RequestCodeOut(
        status="code_sent",
        phone_code_hash=sent.phone_code_hash,
        type=sent.type,
        timeout=sent.timeout,
    )


@routes.post("/auth/verify_code", name="auth_verify_code", summary="Complete a login")
async def verify_code(request: web.Request, body: VerifyCodeIn) -> LoginOut:
    """The code (and, for two-step verification, the password) from the login code request."""
    attempt = await login_attempt(request, "verify_code", body.account)
    account = await _account(request, body.account)
    result = await account.verify_code(body.phone, body.code, body.password)
    if result.status == "authorized":
        await attempt.succeeded()
    await _remember_login(request, body.account, account)
    return LoginOut(status=result.status, user=_user(result.user), hint=result.hint)


@routes.post("/auth/password", name="auth_password", summary="Two-step verification password")
async def password(request: web.Request, body: PasswordIn) -> LoginOut:
    attempt = await login_attempt(request, "password", body.account)
    account = await _account(request, body.account)
    result = await account.submit_password(body.password)
    if result.status == "authorized":
        await attempt.succeeded()
    await _remember_login(request, body.account, account)
    return LoginOut(status=result.status, user=_user(result.user), hint=result.hint)


async def _remember_login(request: web.Request, name: str, account: Any) -> None:
    if account.me is None:
        return  # the account's row was updated as it logged in (TelegramAccounts)
    await _account_event(request, "account.authorized", name)


async def _account_event(request: web.Request, type_: str, name: str) -> None:
    """An event about the account (it goes with the account when that is purged)."""
    account_id = await request.app[keys.DIRECTORY].id_of(name)
    await request.app[keys.EVENTS].emit(type_, {"account": name}, account_id=account_id)


@routes.post("/auth/logout", name="auth_logout", summary="Log the account out of Telegram")
async def logout(request: web.Request, body: AccountIn) -> LogoutOut:
    await (await _account(request, body.account)).logout()
    await _account_event(request, "account.logged_out", body.account)
    return LogoutOut(status="logged_out")


@routes.get("/auth/status", name="auth_status", summary="Connection and login state")
async def status(request: web.Request, query: StatusQuery) -> StatusOut:
    accounts = request.app[keys.ACCOUNTS]
    if not accounts.configured:
        return StatusOut(
            account=query.account,
            configured=False,
            connected=False,
            authorized=False,
            user=None,
            pending_login=False,
        )
    await accounts.require_here(query.account)  # its connection's state is known there
    state = (await _account(request, query.account, connect=False)).status()
    return StatusOut(
        account=state["account"],
        configured=True,
        connected=state["connected"],
        since=state["since"],
        last_update_at=state["last_update_at"],
        reconnects=state["reconnects"],
        authorized=state["authorized"],
        user=UserOut(**state["user"]) if state["user"] else None,
        pending_login=state["pending_login"],
    )


async def _dialogs(request: web.Request, params: DialogsIn) -> DialogsOut:
    account = await _account(request, params.account)
    found = await account.dialogs(params.limit, params.offset)
    repo = request.app[keys.DATABASE].repo
    account_id = await request.app[keys.DIRECTORY].id_of(params.account)
    now = request.app[keys.CLOCK].now()
    result = []
    for dialog in found:
        try:
            chat = await repo.get_chat_by_peer(account_id, dialog.id)
            paused_until = chat.paused_until
        except NotFound:
            paused_until = None
        result.append(
            DialogOut(
                id=dialog.id,
                title=dialog.title,
                username=dialog.username,
                kind=dialog.kind,
                unread_count=dialog.unread_count,
                last_message=dialog.last_message,
                last_message_at=dialog.last_message_at,
                paused=paused_until is not None and paused_until > now,
                paused_until=paused_until,
            )
        )
    return DialogsOut(dialogs=result, limit=params.limit, offset=params.offset)


@routes.post("/get_dialogs", name="get_dialogs", summary="Dialogs (admin frontend style)")
async def get_dialogs(request: web.Request, body: DialogsIn) -> DialogsOut:
    return await _dialogs(request, body)


@routes.get("/dialogs", name="dialogs", summary="Dialogs, newest first")
async def dialogs(request: web.Request, query: DialogsIn) -> DialogsOut:
    return await _dialogs(request, query)


@routes.post("/send_message", name="send_message", summary="Send a message as the owner")
async def send_message(request: web.Request, body: SendMessageIn) -> SendMessageOut:
    account = await _account(request, body.account)
    account.require_authorized()
    account_id = await request.app[keys.DIRECTORY].id_of(body.account)
    outbox = request.app[keys.OUTBOX]
    if body.voice:
        speaker = request.app[keys.SERVICES].get("tts")
        if speaker is None:
            from twin.errors import InvalidInput

            raise InvalidInput("voice", "no text-to-speech provider is configured ([tts])")
        voice = await request.app[keys.DATABASE].repo.twin_voice(account_id)  # the twin's
        note = await speaker.synthesize(
            body.text, voice_id=voice.get("voice_id"), provider=voice.get("provider")
        )
        sent = await outbox.send_voice(
            account,
            account_id,
            body.chat,
            body.text,
            note,
            allow_first_contact=body.allow_first_contact,
        )
    else:
        sent = await outbox.send_text(
            account, account_id, body.chat, body.text, allow_first_contact=body.allow_first_contact
        )
    return SendMessageOut(chat=sent.chat_id, message_id=sent.message_id, voice=body.voice)
