"""CORS for the admin frontend, from `api.cors_origins` (none configured: no CORS headers)."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp_cors
from aiohttp import web

# Every request header the API reads: the token (either form), JSON bodies, the caller's request
# id, and the SSE resume position.
ALLOW_HEADERS = ("Authorization", "Content-Type", "Last-Event-ID", "X-API-Key", "X-Request-ID")
EXPOSE_HEADERS = (
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)


def setup_cors(app: web.Application, origins: Sequence[str]) -> frozenset[web.AbstractRoute]:
    """Enable CORS on every routed endpoint; return the preflight (OPTIONS) routes it added."""
    if not origins:
        return frozenset()
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=False,  # bearer tokens travel in a header, not in cookies
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        max_age=600,
    )
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    before = set(app.router.routes())
    for route in list(before):
        if not isinstance(route.resource, web.StaticResource):
            cors.add(route)
    app.on_response_prepare.append(_vary_on_origin)
    return frozenset(set(app.router.routes()) - before)


async def _vary_on_origin(request: web.BaseRequest, response: web.StreamResponse) -> None:
    # Answers differ by Origin, so shared caches must key on it.
    response.headers.add("Vary", "Origin")
