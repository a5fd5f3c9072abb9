"""The OpenAPI document and the interactive docs page (Swagger UI, served from twin/api/static).

`/docs` and its assets are public: they are the generic Swagger UI plus a token form, and say
nothing about this daemon. The page fetches `/openapi.json` with the token the user pastes (kept
in sessionStorage, i.e. this browser tab only) and sends it on every "Try it out" request.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from twin.api.openapi import OPENAPI_DOCUMENT
from twin.api.validation import RouteTable

routes = RouteTable(tags=("docs",))

STATIC_ROUTE = "docs_static"
# The page runs only our own scripts; Swagger UI needs inline *styles* (React style attributes).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{favicon}">
{styles}
</head>
<body>
<form id="twin-token" class="twin-token" autocomplete="off">
<label for="twin-token-input">API token</label>
<input id="twin-token-input" type="password" required autocomplete="off"
 placeholder="one of the tokens in TWIN_API__TOKENS">
<button type="submit">Load API</button>
<button type="button" id="twin-token-forget">Forget token</button>
<span id="twin-token-status" role="status"></span>
</form>
<div id="{root}" data-renderer="{root}" data-openapi-url="{openapi_url}"></div>
{scripts}
</body>
</html>
"""


# ReDoc also builds its search index in a worker started from a blob: URL.
REDOC_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY + "; worker-src 'self' blob:"


@routes.get("/openapi.json", name="openapi", media_type="application/json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 description, generated from the route table."""
    return web.json_response(request.app[OPENAPI_DOCUMENT])


def _page(
    request: web.Request,
    title: str,
    root: str,
    styles: list[str],
    scripts: list[str],
    policy: str,
) -> web.Response:
    static = request.app.router[STATIC_ROUTE]

    def asset(filename: str) -> str:
        return escape(str(static.url_for(filename=filename, append_version=True)))

    page = _PAGE.format(
        title=title,
        favicon=asset("favicon-32x32.png"),
        styles="\n".join(f'<link rel="stylesheet" href="{asset(name)}">' for name in styles),
        root=root,
        openapi_url=escape(str(request.app.router["openapi"].url_for())),
        scripts="\n".join(f'<script src="{asset(name)}"></script>' for name in scripts),
    )
    return web.Response(
        text=page,
        content_type="text/html",
        headers={
            "Content-Security-Policy": policy,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@routes.get("/docs", name="docs", public=True, media_type="text/html")
async def docs(request: web.Request) -> web.Response:
    """Interactive API documentation (Swagger UI); paste an API token to load it."""
    return _page(
        request,
        "twin API",
        "swagger-ui",
        ["swagger-ui.css", "twin-docs.css"],
        ["swagger-ui-bundle.js", "twin-docs.js"],
        CONTENT_SECURITY_POLICY,
    )


@routes.get("/redoc", name="redoc", public=True, media_type="text/html")
async def redoc(request: web.Request) -> web.Response:
    """The API reference (ReDoc), beside /docs; paste an API token to load it."""
    return _page(
        request,
        "twin API reference",
        "redoc",
        ["twin-docs.css"],
        ["redoc.standalone.js", "twin-docs.js"],
        REDOC_CONTENT_SECURITY_POLICY,
    )
