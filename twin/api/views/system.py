"""Operational endpoints: health and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from twin import __version__, keys
from twin.api.metrics import METRICS
from twin.api.validation import ApiModel, RouteTable, respond

log = logging.getLogger("twin.api.health")
routes = RouteTable(tags=("system",))

PING_TIMEOUT = 3.0  # seconds; a health check must answer even when the database hangs


class HealthOut(ApiModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down"]
    version: str


@routes.get("/health", name="health", public=True, responses={503: HealthOut})
async def health(request: web.Request) -> HealthOut | web.Response:
    """Liveness and database health (no token needed): 200 when healthy, 503 when degraded."""
    database_ok = await _ping(request.app.get(keys.DATABASE))
    out = HealthOut(
        status="ok" if database_ok else "degraded",
        database="ok" if database_ok else "down",
        version=__version__,
    )
    return respond(out, status=200 if database_ok else 503)


async def _ping(database: Any) -> bool:
    if database is None:
        return False
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            return bool(await database.ping())
    except Exception as exc:
        log.warning("database ping failed: %s: %s", type(exc).__name__, exc)
        return False


@routes.get("/metrics", name="metrics", media_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (text exposition format; OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": content_type})
