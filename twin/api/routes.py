"""The one route table of the HTTP API.

Each feature declares its endpoints in a `RouteTable` (see `twin.api.validation`) in its own
module under `twin/api/views/`; add that table to `ROUTE_TABLES` below and it is routed, checked
for a token (unless declared `public=True`), given CORS, counted in /metrics and documented in
/openapi.json. Later issues add /auth/*, /dialogs, /messages, /settings, /stats, /events here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aiohttp import web

from twin.api.validation import RouteTable
from twin.api.views import (
    accounts,
    analytics,
    app_page,
    app_session,
    bots,
    chat,
    cluster,
    control,
    conversation,
    diagnostics,
    docs,
    drafts,
    event_stream,
    external,
    history,
    keys,
    knowledge,
    memory,
    messaging,
    replies,
    safety,
    stats,
    style,
    system,
    talkme,
    telegram,
    twins,
)

STATIC_DIR = Path(__file__).parent / "static"

ROUTE_TABLES: tuple[RouteTable, ...] = (
    system.routes,  # GET /health, GET /metrics
    docs.routes,  # GET /openapi.json, GET /docs (+ /docs/static/*)
    diagnostics.routes,  # POST /echo
    telegram.routes,  # /auth/*, /get_dialogs, /dialogs, /send_message
    history.routes,  # GET /messages (+ /{id}/audio), GET /conversations
    accounts.routes,  # GET /accounts, DELETE /accounts/{name}, GET /channels
    safety.routes,  # GET/PUT /accounts/{name}/safety
    style.routes,  # GET /style
    control.routes,  # GET /chats, POST /chats/{id}/pause|resume, GET/PUT /settings, /twin/*
    stats.routes,  # GET /stats
    cluster.routes,  # GET /cluster
    event_stream.routes,  # GET /events (SSE)
    replies.routes,  # POST /replies/{id}/retry
    drafts.routes,  # GET /drafts, POST /drafts/{id}/send|skip
    keys.routes,  # POST /keys, GET /keys, DELETE /keys/{name}
    twins.routes,  # /twins, /twins/{name}, PUT /accounts/{name}
    knowledge.routes,  # /twins/{name}/knowledge (+ /search, /{doc})
    memory.routes,  # /contacts, /contacts/{id}/memory, /followups
    chat.routes,  # GET /, POST /api/chat, POST /api/debug
    talkme.routes,  # POST /webhook/talkme, its health, stats, session delete
    external.routes,  # POST /api/v1/external/messages, /webhooks/deliveries, GET /share/{token}
    analytics.routes,  # GET /api/v1/analytics/metrics
    conversation.routes,  # /api/v1/conversation/chat, sessions, history, escalate
    messaging.routes,  # /api/v1/messaging/send, context, platforms
    bots.routes,  # /bots
    app_session.routes,  # POST/GET/DELETE /app/session, DELETE /app/sessions
    app_page.routes,  # GET /app/ (+ /app/static/*): the admin app
)


def setup_routes(app: web.Application, tables: Iterable[RouteTable] = ROUTE_TABLES) -> None:
    for table in tables:
        add_routes(app, table)
    app.router.add_static("/docs/static", STATIC_DIR, name=docs.STATIC_ROUTE)
    app.router.add_static(
        "/app/static", app_page.APP_STATIC_DIR, name=app_page.APP_STATIC_ROUTE
    )


def add_routes(app: web.Application, table: RouteTable) -> None:
    """Route every endpoint of `table` (tests use it for test-only endpoints).

    The endpoints of one path share one resource (GET and PUT /settings): a CORS preflight is
    answered per resource, so a second resource for the same path would never be asked, and
    its methods would be refused to browsers. The resource is named after its first endpoint;
    each route is named by its own endpoint through `twin.api.validation.endpoint_of`.
    """
    resources = {
        resource.canonical: resource
        for resource in app.router.resources()
        if isinstance(resource, web.Resource)
    }
    for endpoint in table:
        resource = resources.get(endpoint.path)
        if resource is None:
            resource = resources[endpoint.path] = app.router.add_resource(
                endpoint.path, name=endpoint.name
            )
        resource.add_route(endpoint.method, endpoint.handler)
        if endpoint.method == "GET":
            resource.add_route("HEAD", endpoint.handler)
