"""Request id and error middlewares.

Order (outermost first, see `twin.api.setup_api`): request_id → metrics → errors → static files
→ auth → rate limit → view.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from twin import errors
from twin.api.context import request_scope
from twin.api.errors import ApiError, error_response, from_domain
from twin.api.validation import endpoint_of

log = logging.getLogger("twin.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID: web.RequestKey[str] = web.RequestKey("twin_request_id", str)
# The route's name, set for every request that was routed (the access log reads it).
ROUTE: web.RequestKey[str] = web.RequestKey("twin_route", str)
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# aiohttp's own HTTP exceptions keep these headers when converted to the error shape.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def route_label(request: web.Request) -> str:
    """The route's name; "unmatched" for 404/405 (never the raw path)."""
    match_info = request.match_info
    resource = match_info.route.resource
    if match_info.http_exception is not None or resource is None:
        return "unmatched"
    endpoint = endpoint_of(match_info.handler)  # endpoints of one path share one resource
    if endpoint is not None:
        return endpoint.name
    return match_info.route.name or resource.name or resource.canonical


def request_id_of(request: web.BaseRequest) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:  # the middleware did not run (aiohttp answered before routing)
        rid = request[REQUEST_ID] = uuid.uuid4().hex
    return rid


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Honour a sane incoming X-Request-ID, else make one; the request's log records (and its
    tasks', while it lasts) carry it."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = rid
    request[ROUTE] = route_label(request)
    with request_scope(rid):
        return await handler(request)


async def on_response_prepare(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Put X-Request-ID on every response, streamed ones and CORS preflights included."""
    response.headers[REQUEST_ID_HEADER] = request_id_of(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def error_middleware(max_body_bytes: int) -> Middleware:
    """Turn every exception into the one error shape; unexpected ones become a logged 500."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request_id_of(request)
        try:
            return await handler(request)
        except ApiError as exc:
            error = exc
        except web.HTTPException as exc:
            if exc.status < 400:  # redirects and the like are not errors
                raise
            error = _from_http_exception(exc, request, max_body_bytes)
        except (HttpProcessingError, web.RequestPayloadError) as exc:  # bad gzip, chunks …
            reason = parse_error_message(exc)
            error = ApiError(400, f"The request body could not be read: {reason}.")
        except errors.TwinError as exc:
            mapped = from_domain(exc)
            if mapped is None:
                return _internal_error(request, rid)
            if mapped.status >= 500:
                log.warning(
                    "%s %s failed: %s: %s",
                    request.method,
                    request.path,
                    type(exc).__name__,
                    exc,
                    extra={"request_id": rid},
                )
            error = mapped
        except Exception:  # not CancelledError: a client that went away is not an error
            return _internal_error(request, rid)
        return error_response(
            error.status,
            error.message,
            rid,
            type=error.type,
            details=error.details,
            headers=error.headers,
        )

    return middleware


def static_files_middleware(resource_name: str, directory: Path) -> Middleware:
    """A missing static file is a 404 in the error shape: aiohttp's static handler only finds
    out when it sends the file, and then answers an empty 404 of its own. The assets are a
    fixed set of files (in subfolders too: `pages/overview.js`), listed once here."""
    files = frozenset(
        path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        static = resource is not None and resource.name == resource_name
        if static and request.match_info.get("filename") not in files:
            raise web.HTTPNotFound()
        response = await handler(request)
        if static:  # asked again each time (a 304 when unchanged): an upgrade never mixes files
            response.headers["Cache-Control"] = "no-cache"
        return response

    return middleware


def _internal_error(request: web.Request, rid: str) -> web.Response:
    # The traceback goes to the log only; the client gets the request id to quote in a report.
    log.exception(
        "unhandled error in %s %s", request.method, request.path, extra={"request_id": rid}
    )
    message = "Internal server error; the daemon log has the details under this request id."
    return error_response(500, message, rid)


def _from_http_exception(
    exc: web.HTTPException, request: web.Request, max_body_bytes: int
) -> ApiError:
    headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
    if isinstance(exc, web.HTTPNotFound):
        message = f"No such resource: {request.path}"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"Method {request.method} is not allowed here; allowed: {allowed}"
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        message = f"The request body is larger than the limit of {max_body_bytes} bytes."
    elif exc.text and not exc.text.startswith(f"{exc.status}:"):
        message = exc.text  # a specific text, e.g. aiohttp-cors explaining a refused preflight
    else:
        message = exc.reason
    return ApiError(exc.status, message, headers=headers)


def parse_error_message(exc: BaseException | None) -> str:
    """What aiohttp's parser found wrong, without the bytes it quotes from the request."""
    if isinstance(exc, web.RequestPayloadError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the body's parser error, re-raised to the reader
    if not isinstance(exc, HttpProcessingError):
        return "malformed request"
    # aiohttp's messages quote the offending input after the first line (or after a colon).
    text = (exc.message or "").strip().split("\n", 1)[0].split(":", 1)[0].strip()
    return text[:120] or "malformed request"
