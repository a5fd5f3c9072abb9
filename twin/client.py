"""An async Python client of the twin's HTTP API (aiohttp).

    async with TwinClient("http://127.0.0.1:8080", api_key) as twin:
        said = await twin.chat("Are you open today?", thread_id="lead-7")
        async for piece in twin.chat_stream("And tomorrow?", thread_id="lead-7"):
            ...  # str deltas, then one ChatDone
        async for event in twin.events(types="reply.*"):
            ...

It is built on the daemon's own route table (twin.api.routes): every operation of
/openapi.json is `call(operation_id, path=…, query=…, body=…)`, its inputs checked with the
models the server checks them with and its answer parsed into the model the server renders, so
client and server cannot drift (tests/client/test_client.py also compares it with the live
document). The named methods are the common operations, typed. Every error answer raises the
`ApiError` subclass of its `type` in the error shape (NotFound, Conflict, RateLimited…).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel

from twin.api.routes import ROUTE_TABLES
from twin.api.validation import Endpoint
from twin.api.views.accounts import AccountsOut
from twin.api.views.analytics import MetricsOut
from twin.api.views.chat import ChatOut as ChatAnswer
from twin.api.views.control import ChatOut, ChatsOut
from twin.api.views.conversation import ConversationOut, EscalatedOut, HistoryOut, SessionsOut
from twin.api.views.external import AcceptedOut, DeliveriesOut, DeliveryOut
from twin.api.views.history import MessagesOut
from twin.api.views.keys import KeysOut
from twin.api.views.messaging import ContextOut, PlatformsOut, SendOut
from twin.api.views.stats import StatsOut
from twin.api.views.twins import TwinOut, TwinsOut

__all__ = [
    "ApiError",
    "BadRequest",
    "ChatDone",
    "Conflict",
    "Event",
    "Forbidden",
    "InternalError",
    "MethodNotAllowed",
    "NotFound",
    "NotLoggedIn",
    "PayloadTooLarge",
    "RateLimited",
    "TwinClient",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UpstreamError",
    "ValidationFailed",
]

ENDPOINTS: dict[str, Endpoint] = {e.name: e for table in ROUTE_TABLES for e in table}


# --- errors ---------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer in the API's error shape."""

    type: ClassVar[str] = ""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: list[dict[str, str]] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {self.type or 'error'}: {message}")
        self.status = status
        self.message = message
        self.details = details or []
        self.request_id = request_id
        self.retry_after = retry_after


class ValidationFailed(ApiError):
    type = "validation_error"


class BadRequest(ApiError):
    type = "bad_request"


class Unauthorized(ApiError):
    type = "unauthorized"


class NotLoggedIn(ApiError):
    type = "not_logged_in"


class Forbidden(ApiError):
    type = "forbidden"


class NotFound(ApiError):
    type = "not_found"


class MethodNotAllowed(ApiError):
    type = "method_not_allowed"


class Conflict(ApiError):
    type = "conflict"


class PayloadTooLarge(ApiError):
    type = "payload_too_large"


class UnsupportedMediaType(ApiError):
    type = "unsupported_media_type"


class RateLimited(ApiError):
    type = "rate_limited"


class InternalError(ApiError):
    type = "internal_error"


class UpstreamError(ApiError):
    type = "upstream_error"


class Unavailable(ApiError):
    type = "unavailable"


ERRORS: dict[str, type[ApiError]] = {cls.type: cls for cls in ApiError.__subclasses__()}


def _error(status: int, body: Any, headers: Mapping[str, str]) -> ApiError:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ApiError(status, str(body)[:200])
    retry = headers.get("Retry-After")
    return ERRORS.get(str(error.get("type")), ApiError)(
        status,
        str(error.get("message", "")),
        details=error.get("details"),
        request_id=error.get("request_id"),
        retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
    )


# --- streams --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatDone:
    """The end of `/api/chat/stream`: the whole answer and what came with it."""

    thread_id: str
    response: str
    escalated: bool
    usage: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """One event of `GET /events` (`id`: resume after it with `last_event_id`)."""

    id: int
    type: str
    account: str | None  # the account's (or channel instance's) name
    chat: int | None  # the chat's id as GET /chats lists it
    created_at: str
    data: dict[str, Any]  # the type's own fields (twin.services.events.EVENT_TYPES)


async def _sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str, str]]:
    """(id, event, data) of each server-sent event."""
    fields: dict[str, list[str]] = {}
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if "data" in fields or "event" in fields:
                yield (
                    "".join(fields.get("id", [""])),
                    "".join(fields.get("event", ["message"])),
                    "\n".join(fields.get("data", [])),
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))


# --- the client -----------------------------------------------------------------------------------


class TwinClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._own = session is None
        self._session = session or aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout)
        )

    async def __aenter__(self) -> TwinClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own:
            await self._session.close()

    # -- any operation -------------------------------------------------------------------------
    def _request(
        self,
        operation: str,
        path: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        body: Mapping[str, Any] | BaseModel | None,
    ) -> tuple[Endpoint, str, dict[str, Any]]:
        endpoint = ENDPOINTS[operation]  # KeyError: no such operation
        url = endpoint.path
        models = endpoint.inputs
        if "path" in models:
            checked = models["path"].model_validate(dict(path or {}))
            for key, value in checked.model_dump().items():
                url = url.replace("{" + key + "}", str(value))
        options: dict[str, Any] = {"headers": self._headers}
        if "query" in models:
            checked = models["query"].model_validate(dict(query or {}))
            options["params"] = {
                key: str(value).lower() if isinstance(value, bool) else str(value)
                for key, value in checked.model_dump(mode="json", exclude_none=True).items()
            }
        if "body" in models:
            data = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body or {})
            checked = models["body"].model_validate(data)
            options["json"] = checked.model_dump(mode="json", exclude_unset=True)
        return endpoint, self.base_url + url, options

    async def call(
        self,
        operation: str,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
    ) -> Any:
        """Operation `operation` (its operationId in /openapi.json), answered as the model the
        server renders (None for 204; a JSON value for raw answers)."""
        endpoint, url, options = self._request(operation, path, query, body)
        async with self._session.request(endpoint.method, url, **options) as response:
            if response.status == 204:
                return None
            text = await response.text()
            parsed = json.loads(text) if text and "json" in response.content_type else text
            if response.status >= 400:
                raise _error(response.status, parsed, response.headers)
        if endpoint.response is None:
            return parsed
        return endpoint.response.validate_python(parsed)

    # -- the common operations, typed ----------------------------------------------------------
    async def health(self) -> Any:
        return await self.call("health")

    async def accounts(self) -> AccountsOut:
        return await self.call("accounts")

    async def chats(self, account: str | None = None) -> ChatsOut:
        return await self.call("chats", query={"account": account} if account else {})

    async def pause(
        self, chat_id: int, minutes: float | None = None, account: str | None = None
    ) -> ChatOut:
        body: dict[str, Any] = {"minutes": minutes}
        if account:
            body["account"] = account
        return await self.call("chat_pause", path={"chat_id": chat_id}, body=body)

    async def resume(self, chat_id: int, account: str | None = None) -> ChatOut:
        body = {"account": account} if account else {}
        return await self.call("chat_resume", path={"chat_id": chat_id}, body=body)

    async def messages(
        self, chat: int, *, limit: int = 50, account: str | None = None
    ) -> MessagesOut:
        query: dict[str, Any] = {"chat": chat, "limit": limit}
        if account:
            query["account"] = account
        return await self.call("messages", query=query)

    async def stats(self, days: int = 7, **query: Any) -> StatsOut:
        return await self.call("stats", query={"days": days, **query})

    async def twins(self) -> TwinsOut:
        return await self.call("twins")

    async def twin(self, name: str) -> TwinOut:
        return await self.call("twin", path={"name": name})

    async def create_twin(self, name: str, **sections: Any) -> TwinOut:
        return await self.call("twin_create", body={"name": name, **sections})

    async def replace_twin(self, name: str, **sections: Any) -> TwinOut:
        return await self.call("twin_replace", path={"name": name}, body=sections)

    async def delete_twin(self, name: str) -> None:
        await self.call("twin_delete", path={"name": name})

    async def keys(self) -> KeysOut:
        return await self.call("keys")

    async def chat(
        self, message: str, *, thread_id: str | None = None, **fields: Any
    ) -> ChatAnswer:
        body = {"message": message, **fields}
        if thread_id is not None:
            body["thread_id"] = thread_id
        return await self.call("api_chat", body=body)

    async def chat_stream(
        self, message: str, *, thread_id: str | None = None, **fields: Any
    ) -> AsyncIterator[str | ChatDone]:
        """The answer as the model writes it: `str` pieces, then one ChatDone; an `error`
        event raises its ApiError."""
        body = {"message": message, **fields}
        if thread_id is not None:
            body["thread_id"] = thread_id
        endpoint, url, options = self._request("api_chat_stream", None, None, body)
        async with self._session.request(endpoint.method, url, **options) as response:
            if response.status >= 400:
                raise _error(response.status, await response.json(), response.headers)
            async for _, kind, data in _sse(response):
                payload = json.loads(data)
                if kind == "delta":
                    yield payload["text"]
                elif kind == "done":
                    yield ChatDone(
                        payload["thread_id"],
                        payload["response"],
                        payload["escalated"],
                        payload.get("usage") or {},
                        payload.get("flags") or {},
                    )
                    return
                elif kind == "error":
                    raise _error(500, payload, {})

    async def events(
        self, *, types: str | None = None, last_event_id: int | None = None, **query: Any
    ) -> AsyncIterator[Event]:
        """`GET /events` as it happens (resumes after `last_event_id`)."""
        if types is not None:
            query["types"] = types
        endpoint, url, options = self._request("events", None, query, None)
        if last_event_id is not None:
            options["headers"] = {**options["headers"], "Last-Event-ID": str(last_event_id)}
        async with self._session.request(endpoint.method, url, **options) as response:
            if response.status >= 400:
                raise _error(response.status, await response.json(), response.headers)
            async for event_id, _, data in _sse(response):
                if event_id.isdigit():
                    envelope = json.loads(data)
                    yield Event(
                        int(envelope["id"]),
                        envelope["type"],
                        envelope.get("account"),
                        envelope.get("chat"),
                        envelope.get("created_at", ""),
                        envelope.get("data") or {},
                    )

    async def external_message(
        self, chat_id: str | int, message: str, **fields: Any
    ) -> AcceptedOut:
        return await self.call(
            "external_message", body={"chat_id": chat_id, "message": message, **fields}
        )

    async def deliveries(self, state: str | None = None, limit: int = 100) -> DeliveriesOut:
        query: dict[str, Any] = {"limit": limit}
        if state:
            query["state"] = state
        return await self.call("webhook_deliveries", query=query)

    async def redeliver(self, delivery_id: int) -> DeliveryOut:
        return await self.call("webhook_redeliver", path={"delivery_id": delivery_id})

    async def analytics(self, **query: Any) -> MetricsOut:
        """`start_date`, `end_date` (dates or ISO text), `user_id`, `platform`."""
        return await self.call("analytics_metrics", query=query)

    async def converse(
        self, message: str, user_id: str, platform: str, **fields: Any
    ) -> ConversationOut:
        """`POST /api/v1/conversation/chat` (`session_id`, `context` in `fields`)."""
        body = {"message": message, "user_id": user_id, "platform": platform, **fields}
        return await self.call("conversation_chat", body=body)

    async def sessions(self, user_id: str) -> SessionsOut:
        return await self.call("conversation_sessions", path={"user_id": user_id})

    async def history(self, session_id: str, *, limit: int = 50, offset: int = 0) -> HistoryOut:
        return await self.call(
            "conversation_history",
            path={"session_id": session_id},
            query={"limit": limit, "offset": offset},
        )

    async def escalate(
        self, session_id: str, reason: str, priority: str = "normal", **context: Any
    ) -> EscalatedOut:
        body = {
            "session_id": session_id,
            "reason": reason,
            "priority": priority,
            "context": context,
        }
        return await self.call("conversation_escalate", body=body)

    async def send(self, platform: str, chat_id: str | int, text: str, **fields: Any) -> SendOut:
        """`POST /api/v1/messaging/send` (`account`, `message_type`… in `fields`)."""
        body = {"platform": platform, "chat_id": str(chat_id), "text": text, **fields}
        return await self.call("messaging_send", body=body)

    async def context(self, platform: str, chat_id: str | int, user_id: str) -> ContextOut:
        path = {"platform": platform, "chat_id": str(chat_id), "user_id": user_id}
        return await self.call("messaging_context", path=path)

    async def update_context(
        self, platform: str, chat_id: str | int, user_id: str, **context: Any
    ) -> ContextOut:
        path = {"platform": platform, "chat_id": str(chat_id), "user_id": user_id}
        return await self.call("messaging_context_put", path=path, body={"context": context})

    async def platforms(self) -> PlatformsOut:
        return await self.call("messaging_platforms")
