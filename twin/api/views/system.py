"""Operational endpoints: liveness, readiness and Prometheus metrics (see twin/api/readiness.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from pydantic import Field

from twin import __version__
from twin.api import readiness
from twin.api.metrics import METRICS
from twin.api.validation import ApiModel, RouteTable, respond

routes = RouteTable(tags=("system",))

PING_TIMEOUT = 3.0  # seconds; a health check must answer even when the database hangs


class HealthOut(ApiModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down"]
    version: str


@routes.get("/health", name="health", public=True, responses={503: HealthOut})
async def health(request: web.Request) -> HealthOut | web.Response:
    """Liveness and database health (no token needed): 200 when healthy, 503 when degraded."""
    database_ok = await _ping(request.app)
    out = HealthOut(
        status="ok" if database_ok else "degraded",
        database="ok" if database_ok else "down",
        version=__version__,
    )
    return respond(out, status=200 if database_ok else 503)


async def _ping(app: web.Application) -> bool:
    return await readiness.ping_database(app, PING_TIMEOUT)


class ComponentOut(ApiModel):
    name: str = Field(description='"database", "telegram:<account>", "llm", "stt", "tts"')
    status: Literal["ok", "down", "unknown"]
    required: bool = Field(description="whether readiness waits for this component")
    last_success_at: datetime | None
    last_error_at: datetime | None
    error: str | None = Field(description="the last failure, shortened (while failing)")


class TelegramComponentOut(ComponentOut):
    account: str
    authorized: bool
    connected: bool = Field(description="the real link state (not Telethon's is_connected())")
    since: datetime | None = Field(description="when the current link state began")
    reconnects: int = Field(description="outages that ended with the link up again")
    undecodable_updates: int = Field(description="updates dropped as undecodable")


class ReadyOut(ApiModel):
    status: Literal["ready", "not_ready"]
    database: ComponentOut
    telegram: list[TelegramComponentOut] = Field(description="one per known account")
    dependencies: list[ComponentOut] = Field(
        description="llm, stt, tts as their callers report them (informational)"
    )
    version: str


@routes.get("/ready", name="ready", public=True, responses={503: ReadyOut})
async def ready(request: web.Request) -> ReadyOut | web.Response:
    """Readiness (no token needed): 200 when the database answers and every Telegram account
    that is (or may be) logged in is connected; else 503. Lists every component's state."""
    await _ping(request.app)
    state = readiness.snapshot(request.app)
    out = ReadyOut(
        status="ready" if state.ready else "not_ready",
        database=ComponentOut.model_validate(state.database, from_attributes=True),
        telegram=[
            TelegramComponentOut.model_validate(c, from_attributes=True) for c in state.telegram
        ],
        dependencies=[
            ComponentOut.model_validate(c, from_attributes=True) for c in state.dependencies
        ],
        version=__version__,
    )
    return respond(out, status=200 if state.ready else 503)


@routes.get("/metrics", name="metrics", media_type="text/plain", bound_keys=False)
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (text exposition format; OpenMetrics when the scraper asks for it)."""
    await _ping(request.app)  # twin_component_up{component="database"} is as of this scrape
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": content_type})
