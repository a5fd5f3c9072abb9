"""Telegram bots (`/bots`): connect one by token and pick the twin that answers there, list
them with their status, pause, resume, remove (twin.services.bots)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field, SecretStr

from twin import keys
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.services.bots import BotAdmin, BotInfo

routes = RouteTable(tags=("bots",))


class BotIn(ApiModel):
    token: SecretStr = Field(description="from @BotFather; checked by logging in, never returned")
    twin: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class BotOut(ApiModel):
    id: int = Field(description="the bot's Telegram user id")
    account: str = Field(description="its account name (bot-<id>): /chats?account=, /stats…")
    username: str | None
    twin: str
    status: Literal["connected", "connecting", "unauthorized", "flood_limited", "error"]
    paused: bool
    messages_today: int = Field(description="messages received since 00:00 UTC")
    last_error: str | None
    last_error_at: datetime | None
    retry_at: datetime | None = Field(description="flood_limited: when Telegram allows again")

    @classmethod
    def of(cls, info: BotInfo) -> BotOut:
        return cls(
            id=info.id,
            account=info.name,
            username=info.username,
            twin=info.twin,
            status=info.status,  # type: ignore[arg-type]
            paused=info.paused,
            messages_today=info.messages_today,
            last_error=info.last_error,
            last_error_at=info.last_error_at,
            retry_at=info.retry_at,
        )


class BotsOut(ApiModel):
    bots: list[BotOut]


class BotPath(ApiModel):
    bot_id: int = Field(ge=1, le=2**63 - 1)


def _bots(request: web.Request) -> BotAdmin:
    bots = request.app.get(keys.BOTS)
    if bots is None:
        raise ApiError(503, "Telegram is not configured: no bot can be connected.")
    return bots


@routes.post("/bots", name="bot_add", summary="Connect a Telegram bot", status=201)
async def bot_add(request: web.Request, body: BotIn) -> BotOut:
    """Log the bot in with its token (422 when Telegram refuses it; 409 when it is connected
    already; 429 when Telegram asks to wait) and answer there as `twin` from now on."""
    info = await _bots(request).add(body.token.get_secret_value(), body.twin)
    return BotOut.of(info)


@routes.get("/bots", name="bots", summary="The connected Telegram bots")
async def bots(request: web.Request) -> BotsOut:
    """Every bot with its status, twin, whether it is paused and its messages today."""
    return BotsOut(bots=[BotOut.of(info) for info in await _bots(request).list()])


@routes.delete("/bots/{bot_id}", name="bot_remove", summary="Remove a bot")
async def bot_remove(request: web.Request, path: BotPath) -> None:
    """Log the bot out at Telegram and forget it with its conversations (404: no such bot)."""
    await _bots(request).remove(path.bot_id)


@routes.post("/bots/{bot_id}/pause", name="bot_pause", summary="Stop answering on a bot")
async def bot_pause(request: web.Request, path: BotPath) -> BotOut:
    """Messages are still stored; nothing is answered until resumed."""
    return BotOut.of(await _bots(request).pause(path.bot_id, True))


@routes.post("/bots/{bot_id}/resume", name="bot_resume", summary="Answer on a bot again")
async def bot_resume(request: web.Request, path: BotPath) -> BotOut:
    return BotOut.of(await _bots(request).pause(path.bot_id, False))
