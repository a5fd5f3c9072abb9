"""The owner's Telegram accounts: list them with their state; log one out, or delete it.

An account is created only by a login (`POST /auth/request_code`, `twin login`); these routes
never create or connect one, except that removing an account with a stored session connects it
once to end its authorization at Telegram.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.auth import principal_of
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName

routes = RouteTable(tags=("accounts",))


class AccountOut(ApiModel):
    name: str
    phone: str | None = Field(description="masked: +7999***4567")
    user_id: int | None = Field(description="the Telegram user id it is logged in as")
    username: str | None
    status: Literal[
        "connected", "connecting", "awaiting_code", "offline", "logged_out", "not_logged_in"
    ] = Field(
        description="connected: logged in, link up; connecting: logged in, link down "
        "(starting or reconnecting); awaiting_code: a login is under way; offline: logged in "
        "but not served by this process (Telegram not configured, or beyond "
        "[telegram] max_accounts); logged_out; not_logged_in: a login never completed"
    )
    authorized: bool
    connected: bool
    since: datetime | None = Field(description="when the link last came up or went down")
    created_at: datetime
    twin: str = Field(description="the twin it answers as (PUT /accounts/{name})")


class AccountsOut(ApiModel):
    accounts: list[AccountOut]


class AccountPath(ApiModel):
    name: str = AccountName


class RemoveQuery(ApiModel):
    purge: bool = Field(
        False,
        description="also delete the account's data (chats, messages, replies, settings, "
        "style profile, events) and the account itself",
    )


class RemovedOut(ApiModel):
    account: str
    status: Literal["logged_out", "deleted"]
    telegram_logged_out: bool = Field(
        description="the authorization was ended at Telegram (false: there was none alive)"
    )


@routes.get("/accounts", name="accounts", summary="The Telegram accounts and their state")
async def list_accounts(request: web.Request) -> AccountsOut:
    infos = await request.app[keys.ACCOUNT_ADMIN].list()
    principal = principal_of(request)  # a key bound to an account sees only that one
    visible = [info for info in infos if principal is None or principal.sees(info.name)]
    return AccountsOut(accounts=[AccountOut(**asdict(info)) for info in visible])


class ChannelOut(ApiModel):
    name: str = Field(description="its account name (`account` of /conversations, /messages …)")
    channel: str = Field(description="http_chat, talkme, external, api, telegram_bot")
    twin: str = Field(description="the twin it answers as (PUT /accounts/{name})")
    created_at: datetime


class ChannelsOut(ApiModel):
    channels: list[ChannelOut]


@routes.get("/channels", name="channels", summary="The other channels' instances")
async def list_channels(request: web.Request) -> ChannelsOut:
    """Every instance of a channel other than a Telegram account — the HTTP chat API, TalkMe,
    the external messenger, the conversation API, each bot — with the twin it answers as; an
    instance appears once it has been used. A key bound to an account sees only that one."""
    infos = await request.app[keys.ACCOUNT_ADMIN].channels()
    principal = principal_of(request)
    visible = [info for info in infos if principal is None or principal.sees(info.name)]
    return ChannelsOut(channels=[ChannelOut(**asdict(info)) for info in visible])


@routes.delete("/accounts/{name}", name="account_delete", summary="Log an account out or delete it")
async def remove_account(request: web.Request, path: AccountPath, query: RemoveQuery) -> RemovedOut:
    """Log the account out of Telegram (the authorization ends there) and forget its session;
    its history stays, and a new login may use the name again. With `purge=true` the account
    is deleted with all its data. 404: no such account; 503: its session cannot be ended at
    Telegram right now (nothing was changed)."""
    removed = await request.app[keys.ACCOUNT_ADMIN].remove(path.name, purge=query.purge)
    return RemovedOut(
        account=removed.account,
        status="deleted" if removed.purged else "logged_out",
        telegram_logged_out=removed.telegram_logged_out,
    )
