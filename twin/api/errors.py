"""The one error shape of the HTTP API, and the one place that maps exceptions to it.

Every error response looks like

    {"error": {"type": "validation_error", "message": "…",
               "details": [{"field": "…", "error": "…"}], "request_id": "…"}}

Views raise `ApiError` (or a `twin.errors` domain error, or let aiohttp raise its own HTTP
exceptions); `twin.api.middlewares.error_middleware` turns whatever was raised into this shape.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from twin import errors

ErrorType = Literal[
    "validation_error",
    "bad_request",
    "unauthorized",
    "not_logged_in",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "rate_limited",
    "internal_error",
    "upstream_error",
    "unavailable",
]

TYPE_BY_STATUS: dict[int, ErrorType] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
}


def type_for_status(status: int) -> ErrorType:
    if status in TYPE_BY_STATUS:
        return TYPE_BY_STATUS[status]
    return "bad_request" if status < 500 else "internal_error"


# --- schema (documents the shape in /openapi.json; responses are built as plain dicts) ------------


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    error: str


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ErrorType
    message: str
    details: list[ErrorDetail]
    request_id: str


class ErrorResponse(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorInfo


# --- raising ------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered to the client as is: status, type, message, details, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: ErrorType | None = None,
        details: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type: ErrorType = type or type_for_status(status)
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})


def validation_error(exc: ValidationError, *, root: str) -> ApiError:
    """422 from pydantic errors: dotted field paths (`items.0.name`), never the rejected input."""
    details = []
    for item in exc.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or root
        details.append((field, item["msg"]))
    return ApiError(422, "The request is not valid.", details=details)


def from_domain(exc: errors.TwinError) -> ApiError | None:
    """Map a domain error to its HTTP answer; None for errors that are bugs (answered as 500).

    Only errors whose text is written for the API caller are passed on verbatim; adapter failures
    may carry vendor detail, so the client gets a generic message and the log gets the detail.
    """
    text = str(exc)
    if isinstance(exc, errors.NotFound):
        return ApiError(404, text or "Not found.")
    if isinstance(exc, errors.InvalidInput):  # e.g. a wrong login code, as only Telegram can tell
        return ApiError(422, "The request is not valid.", details=[(exc.field, text)])
    if isinstance(exc, errors.InvalidSettings):
        return ApiError(422, text, details=exc.problems)
    if isinstance(exc, errors.TooLarge):
        return ApiError(413, text, details=[(exc.field, text)])
    if isinstance(exc, errors.Conflict):
        return ApiError(
            409, text or "The request conflicts with the current state.", details=exc.problems
        )
    if isinstance(exc, errors.Unauthorized):
        # The *Telegram account* is not logged in (401, as the API contract says). Its own type,
        # and no WWW-Authenticate, so a frontend does not mistake it for a bad API token.
        return ApiError(401, text or "The Telegram account is not logged in.", type="not_logged_in")
    if isinstance(exc, errors.PolicyError):
        return ApiError(403, text or "A policy forbids this action.")
    if isinstance(exc, errors.RateLimited):
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(0, math.ceil(exc.retry_after)))
        return ApiError(429, text or "Rate limited: retry later.", headers=headers)
    if isinstance(exc, errors.TelegramRefused):
        return _telegram_refusal(exc)
    if isinstance(exc, errors.TelegramUnavailable):
        return ApiError(503, text or "Telegram is unavailable.")
    if isinstance(exc, errors.AdapterError):
        return ApiError(503, "A dependency of the daemon is unavailable; retry later.")
    return None


def _telegram_refusal(exc: errors.TelegramRefused) -> ApiError:
    """Telegram said no: its own error message goes in `details` (field "telegram").

    422 when the chat the request names is not valid for the account (as when the daemon itself
    cannot resolve it), 404 when what it names no longer exists, 403 when the account may not do
    it, 502 `upstream_error` for any other refusal (a request Telegram found wrong: a bug or an
    API change on our side, not something the caller can fix by retrying).
    """
    telegram = ("telegram", exc.rpc_error)
    if isinstance(exc, errors.ChatInvalid):
        return ApiError(
            422,
            "Telegram does not accept this chat for this account.",
            details=[("chat", "not a chat this account can reach"), telegram],
        )
    if isinstance(exc, errors.ChatGone):
        return ApiError(
            404, "What the request names no longer exists on Telegram.", details=[telegram]
        )
    if isinstance(exc, errors.TelegramForbidden):
        return ApiError(403, "Telegram does not allow this account to do this.", details=[telegram])
    return ApiError(502, "Telegram refused the request.", details=[telegram])


def error_response(
    status: int,
    message: str,
    request_id: str,
    *,
    type: ErrorType | None = None,
    details: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {
        "error": {
            "type": type or type_for_status(status),
            "message": message,
            "details": [{"field": field, "error": error} for field, error in details],
            "request_id": request_id,
        }
    }
    response = web.Response(
        status=status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        charset="utf-8",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
