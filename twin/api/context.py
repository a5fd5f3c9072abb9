"""The id of the HTTP request being handled.

The scope itself lives in `twin.logs` (its filter stamps every log record with the id); the
request-id middleware opens it for the duration of one request, so everything that runs inside
that request (views, services, adapters) logs with the same id.
"""

from __future__ import annotations

from twin.logs import current_request_id, request_scope

__all__ = ["current_request_id", "request_scope"]
