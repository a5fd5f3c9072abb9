"""Request id and error middlewares.

Order (outermost first, see `twin.api.setup_api`): request_id → metrics → errors → auth → view.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from twin import errors
from twin.api.context import request_id_var
from twin.api.errors import ApiError, error_response, from_domain

log = logging.getLogger("twin.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID: web.RequestKey[str] = web.RequestKey("twin_request_id", str)
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# aiohttp's own HTTP exceptions keep these headers when converted to the error shape.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def request_id_of(request: web.BaseRequest) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:  # the middleware did not run (aiohttp answered before routing)
        rid = request[REQUEST_ID] = uuid.uuid4().hex
    return rid


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Honour a sane incoming X-Request-ID, else make one; expose it to logs via a contextvar."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = rid
    token = request_id_var.set(rid)
    try:
        return await handler(request)
    finally:
        request_id_var.reset(token)


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
