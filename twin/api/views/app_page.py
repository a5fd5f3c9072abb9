"""The admin app's page (issue 19): `/app/` serves one HTML page that loads the app's ES modules
from `/app/static` (twin/api/app_static: our code and vendored Preact + htm, no build step, no
CDN). The page and its assets are public — they hold no data; everything the app shows comes
from the API, with the session cookie (twin.api.views.app_session)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from aiohttp import web

from twin.api.validation import RouteTable

routes = RouteTable(tags=("app",))

APP_STATIC_ROUTE = "app_static"
APP_STATIC_DIR = Path(__file__).resolve().parent.parent / "app_static"

# Our own scripts and styles only; the API on the same origin; never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>twin</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="app"><noscript>The twin admin app needs JavaScript.</noscript></div>
<script type="module" src="{js}"></script>
</body>
</html>
"""


@routes.get("/app", name="app_root", public=True, media_type="text/html")
async def app_root(request: web.Request) -> web.Response:
    """The admin app lives at /app/ (its relative module paths need the slash)."""
    raise web.HTTPPermanentRedirect("/app/")


@routes.get("/app/", name="app_page", public=True, media_type="text/html")
async def app_page(request: web.Request) -> web.Response:
    """The admin app (sign in with an admin key or a `twin app-link` link)."""
    static = request.app.router[APP_STATIC_ROUTE]

    def asset(filename: str) -> str:
        return escape(str(static.url_for(filename=filename, append_version=True)))

    page = _PAGE.format(
        css=asset("app.css"), js=asset("app.js")
    )
    return web.Response(
        text=page,
        content_type="text/html",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
            "X-Frame-Options": "DENY",
        },
    )
