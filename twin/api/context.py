"""The id of the HTTP request being handled.

The contextvar itself lives in `twin.logs` (its filter stamps every log record with it); the
request-id middleware sets it for the duration of one request, so everything that runs inside
that request (views, services, adapters) logs with the same id.
"""

from __future__ import annotations

from twin.logs import request_id_var

__all__ = ["current_request_id", "request_id_var"]


def current_request_id() -> str | None:
    """The X-Request-ID of the request being handled, or None outside a request."""
    return request_id_var.get()
