"""The access log: one line per answered request, with what it was about.

    GET /messages 200 3.1 ms route=messages account=default chat=***0002 key=n8n remote=127.0.0.1

In `--log-format json` the same facts are fields of the line's object: request_id, method,
path, route (the route's name, "unmatched" for a 404/405, "unparsed" for a request aiohttp's
parser refused), status, duration_ms, remote, and account, chat and reply when the request named
them (its query, path or body), and `key`: who called (a stored API key's name, or
`token:…` for one of `[api] tokens`, which the log's redaction masks), never the secret. Chat
ids are masked as in every log line (`twin.logs.mask_chat`), in the path too; a chat named
by "@username" or "+phone" shows as `***`. The query string is never logged.

Probes and scrapes (`/health`, `/ready`, `/metrics`) log at DEBUG: a load balancer or Prometheus
calling every few seconds would otherwise drown the lines that matter. The duration of
`/events` is the stream's whole life.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from twin.api.middlewares import REQUEST_ID, ROUTE
from twin.api.validation import PARSED_INPUTS, PRINCIPAL
from twin.logs import MASK, mask_chat

QUIET_ROUTES = frozenset({"health", "ready", "metrics"})
_PATH_CHARS = 200


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access-log hook (`access_log_class`), writing structured lines."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)  # DEBUG enabled implies INFO

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            route = _route(request)
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            if not self.logger.isEnabledFor(level):
                return
            fields: dict[str, Any] = {
                "request_id": request.get(REQUEST_ID),
                "method": request.method,
                "path": _path(request),
                "route": route,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
            }
            fields.update(_subject(request))
            principal = request.get(PRINCIPAL)
            if principal is not None:  # the token's or key's name, never the secret
                fields["key"] = principal.name
            fields["remote"] = request.remote
            named = " ".join(
                f"{key}={fields[key]}"
                for key in ("route", "account", "chat", "reply", "key", "remote")
                if fields.get(key) is not None
            )
            self.logger.log(
                level,
                "%s %s %s %.1f ms %s",
                fields["method"],
                fields["path"],
                fields["status"],
                fields["duration_ms"],
                named,
                extra=fields,
            )
        except Exception:
            self.logger.exception("cannot write an access log line")


def _route(request: web.BaseRequest) -> str:
    # Set by the request-id middleware; a request without it was answered by aiohttp's
    # protocol before routing (malformed HTTP, see twin.api.server).
    return request.get(ROUTE) or "unparsed"


def _path(request: web.BaseRequest) -> str:
    path = request.path
    routed = isinstance(request, web.Request) and ROUTE in request
    raw_chat = request.match_info.get("chat_id") if routed else None
    if raw_chat:
        masked = _masked_chat(raw_chat)
        path = "/".join(masked if part == raw_chat else part for part in path.split("/"))
    return path if len(path) <= _PATH_CHARS else path[: _PATH_CHARS - 1] + "…"


def _subject(request: web.BaseRequest) -> dict[str, Any]:
    """The account, chat and reply the request's validated inputs name."""
    found: dict[str, Any] = {}
    for model in (request.get(PARSED_INPUTS) or {}).values():
        account = getattr(model, "account", None)
        if isinstance(account, str):
            found["account"] = account
        for name in ("chat_id", "chat"):
            chat = getattr(model, name, None)
            if chat is not None and "chat" not in found:
                found["chat"] = _masked_chat(chat)
        reply = getattr(model, "reply_id", None)
        if isinstance(reply, int):
            found["reply"] = reply
    return found


def _masked_chat(chat: object) -> str:
    if isinstance(chat, int) and not isinstance(chat, bool):
        return mask_chat(chat) or MASK
    text = str(chat)
    if text.lstrip("-").isdigit() and len(text) <= 20:
        return mask_chat(int(text)) or MASK
    return MASK  # "@username" or "+phone"
