"""HTTP control API: routes, middlewares, OpenAPI document.

Public pieces for the layers above: `twin.api.validation` (RouteTable, ApiModel, respond),
`twin.api.routes.ROUTE_TABLES`, `twin.api.errors.ApiError`, `twin.api.context.current_request_id`.
"""

from __future__ import annotations

from aiohttp import web

from twin import __version__
from twin.api import (
    auth,
    cors,
    forwarding,
    metrics,
    middlewares,
    openapi,
    ratelimit,
    readiness,
    routes,
)
from twin.api.validation import endpoint_of
from twin.api.views import event_stream
from twin.api.views.app_page import APP_STATIC_DIR, APP_STATIC_ROUTE
from twin.api.views.docs import STATIC_ROUTE
from twin.config import Settings


def setup_api(app: web.Application, settings: Settings) -> None:
    """Install metrics, routes, CORS, middlewares and the OpenAPI document on `app`."""
    app[metrics.METRICS] = api_metrics = metrics.ApiMetrics()
    readiness.install(app, api_metrics.registry)  # /ready's snapshot, also in /metrics
    app[ratelimit.RATE_LIMITS] = limits = ratelimit.RateLimits(settings.api, api_metrics)
    routes.setup_routes(app)
    preflights = cors.setup_cors(app, settings.api.cors_origins)
    public_resources = {STATIC_ROUTE, APP_STATIC_ROUTE}  # /docs' and the app's assets

    def is_public(request: web.Request) -> bool:
        match_info = request.match_info
        if match_info.http_exception is not None:  # unknown path or method: token first
            return False
        endpoint = endpoint_of(match_info.handler)
        if endpoint is not None:
            return endpoint.public
        resource = match_info.route.resource
        return match_info.route in preflights or (
            resource is not None and resource.name in public_resources
        )

    app.middlewares.extend(
        [
            middlewares.request_id_middleware,
            metrics.metrics_middleware(api_metrics),
            middlewares.error_middleware(settings.api.max_body_bytes),
            middlewares.static_files_middleware(STATIC_ROUTE, routes.STATIC_DIR),
            middlewares.static_files_middleware(APP_STATIC_ROUTE, APP_STATIC_DIR),
            forwarding.forwarding_middleware(),  # another process's account: asked there
            auth.auth_middleware(settings.api.tokens, is_public),
            ratelimit.rate_limit_middleware(limits),
        ]
    )
    app.on_response_prepare.append(middlewares.on_response_prepare)
    app.on_response_prepare.append(ratelimit.on_response_prepare)

    async def on_startup(app: web.Application) -> None:
        auth.log_token_problems(settings.api.tokens)
        # Built once the route table is complete, so routes added after setup_api are in it.
        app[openapi.OPENAPI_DOCUMENT] = openapi.build_openapi(
            app,
            title="twin control API",
            version=__version__,
            description=(
                "Control API of the twin daemon. Every endpoint except `GET /health`, "
                "`GET /ready`, `GET /`, the TalkMe webhook (its own secret) and the `/docs` "
                "page needs an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>` "
                "(TWIN_API__TOKENS are admin keys; named keys with scopes come from "
                "`POST /keys` or `twin keys create`); an operation's `x-required-scope` says "
                "which scope it needs (403 without it). Errors always have the shape "
                '`{"error": {type, message, details, request_id}}`. '
                "Requests are limited per token (api.rate_limit_requests per "
                "api.rate_limit_seconds; X-RateLimit-Limit/-Remaining/-Reset headers, Reset "
                "in Unix seconds) and login attempts per account and client address; over a "
                "limit the answer is 429 with Retry-After."
            ),
        )

    app.on_startup.append(on_startup)
    # Open SSE streams end first, so a graceful stop is not held up by a watching frontend.
    app.on_shutdown.append(event_stream.stop_event_streams)
