"""`GET /events`: the event log as Server-Sent Events (replay after Last-Event-ID, then live).

Each event is sent as

    id: 42
    event: chat.paused
    data: {"id": 42, "type": "chat.paused", "account": "default", "chat": 1000002,
           "created_at": "2025-05-01T10:00:00Z", "data": {...}}

(`data` on one line). Things are named as the rest of the API names them: `account` is the
account's name, `chat` the chat's Telegram peer id (the `id` of GET /chats), and `data` refers to
messages by Telegram message id and to replies by the `reply_id` of GET /messages (see
twin.services.events.EVENT_TYPES for every type's data). `?types=` takes known types only (a
name ending in `*` is a prefix, e.g. `reply.*`); an unknown one is a 422 that lists them.

A comment line (`: heartbeat`) goes out after HEARTBEAT_SECONDS without any other write, so
proxies keep the connection and both ends notice a dead peer.

Streams end when the client goes away (checked at least every DISCONNECT_CHECK_SECONDS and on
every write) and when the app shuts down: `stop_event_streams` must be on `app.on_shutdown`,
where it ends every stream before aiohttp waits for open requests (otherwise an open stream
holds up a graceful shutdown until aiohttp's shutdown_timeout cancels it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from twin import keys
from twin.api.errors import ApiError
from twin.api.fields import INT64_MAX
from twin.api.validation import ApiModel, RouteTable
from twin.services.events import EVENT_TYPES

log = logging.getLogger("twin.api.events")
routes = RouteTable(tags=("observability",))

MEDIA_TYPE = "text/event-stream"
SERVICE_NAME = "event_streams"  # where the app's EventStreams lives in app[keys.SERVICES]
HEARTBEAT_SECONDS = 15.0
DISCONNECT_CHECK_SECONDS = 1.0
REPLAY_PAGE = 200
RETRY_MS = 3000  # the client's reconnection delay (SSE `retry:`)
# An id gap before a recent event may be an insert not committed yet (PostgreSQL allocates ids
# before commit): the stream waits this long for it, by its own clock, rather than skip it for
# good. "Recent" is by the clock of the process that wrote the event, which may be another
# host's: up to GAP_RECENT_SECONDS old, so that hosts' clocks may differ by that much.
GAP_GRACE_SECONDS = 2.0
GAP_RECENT_SECONDS = 60.0
GAP_POLL_SECONDS = 0.05
SHUTDOWN_GRACE_SECONDS = 2.0


class EventStreams:
    """The open /events streams of one app: shutdown stops them all and waits (bounded)."""

    def __init__(self) -> None:
        self._stops: set[asyncio.Event] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closing = False

    @property
    def active(self) -> int:
        return len(self._stops)

    def open(self) -> asyncio.Event:
        if self.closing:
            raise ApiError(503, "The daemon is shutting down.")
        stop = asyncio.Event()
        self._stops.add(stop)
        self._idle.clear()
        return stop

    def release(self, stop: asyncio.Event) -> None:
        self._stops.discard(stop)
        if not self._stops:
            self._idle.set()

    def stop_all(self) -> None:
        self.closing = True
        for stop in self._stops:
            stop.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Until no stream is open; False if some still are after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def streams_of(app: web.Application) -> EventStreams:
    return app[keys.SERVICES].setdefault(SERVICE_NAME, EventStreams())


async def stop_event_streams(app: web.Application) -> None:
    """on_shutdown hook: end every open stream and refuse new ones."""
    streams = streams_of(app)
    streams.stop_all()
    if not await streams.wait_idle(SHUTDOWN_GRACE_SECONDS):
        log.warning("%d event stream(s) still open at shutdown", streams.active)


# --- endpoint -----------------------------------------------------------------------------------


class EventsQuery(ApiModel):
    last_event_id: int | None = Field(
        None,
        ge=0,
        le=INT64_MAX,
        description="replay the stored events after this id first (the `Last-Event-ID` header "
        "wins when both are given); without either, only new events are streamed",
    )
    types: str | None = Field(
        None,
        max_length=1000,
        pattern=r"^[A-Za-z0-9_.*-]+(,[A-Za-z0-9_.*-]+)*$",
        description='comma-separated event types to send, e.g. "chat.paused,reply.sent"; '
        '"reply.*" matches every type starting with "reply.". Known types: '
        + ", ".join(sorted(EVENT_TYPES)),
        examples=["chat.*,settings.changed"],
    )

    channel: Literal["telegram", "http_chat", "talkme"] | None = Field(
        None,
        description="only the events of this channel's accounts and conversations (events "
        "about no account are left out)",
    )

    account: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="only the events of this account (events about no account are left out); "
        "a key bound to an account gets only its account's events",
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: str | None) -> str | None:
        unknown = [name for name in (value or "").split(",") if name and not _known(name)]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise PydanticCustomError(
                "unknown_event_type",
                f"unknown event type{'s' if len(unknown) > 1 else ''} {names}; known types: "
                f"{', '.join(sorted(EVENT_TYPES))} (a name ending in * matches every type "
                "it starts, e.g. reply.*)",
            )
        return value


def _known(name: str) -> bool:
    """A known event type, or a prefix of one ending in `*` (`*` alone: every type)."""
    if name.endswith("*"):
        prefix = name[:-1]
        return "*" not in prefix and any(known.startswith(prefix) for known in EVENT_TYPES)
    return name in EVENT_TYPES


@routes.get("/events", name="events", summary="Live event log (SSE)", media_type=MEDIA_TYPE)
async def events(request: web.Request, query: EventsQuery) -> web.StreamResponse:
    """Server-Sent Events of the event log: first the stored events after `Last-Event-ID`
    (header) or `last_event_id` (query), then new ones as they happen.

    Each event: `id: <n>`, `event: <type>`, `data: {"id", "type", "account", "chat",
    "created_at", "data"}`: `account` is the account's name, `chat` the chat's Telegram peer id
    (as GET /chats shows it), both null for an event about neither; in `data`, messages are
    named by Telegram message id (`message_id`) and replies by `reply` (the `reply_id` of GET
    /messages). A `: heartbeat` comment is sent after 15 s of silence. Reconnect with the last
    id received to resume without gaps.
    """
    event_log = request.app.get(keys.EVENTS)
    if event_log is None:
        raise ApiError(503, "The event log is unavailable (no database).")
    repo = request.app[keys.DATABASE].repo
    wanted = _type_filter(query.types)
    position = _requested_position(request, query)
    latest = await repo.last_event_id()
    # Without a position, start from now; a position from another (older, wiped) log is capped.
    position = latest if position is None else min(position, latest)
    streams = streams_of(request.app)
    stop = streams.open()
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": f"{MEDIA_TYPE}; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            }
        )
        await response.prepare(request)
        if request.method == "HEAD":  # aiohttp routes HEAD to every GET: headers only
            return response
        stream = _Stream(
            request, response, repo, event_log, wanted, stop, query.channel, query.account
        )
        await stream.run(position)
    finally:
        streams.release(stop)
    return response


def _requested_position(request: web.Request, query: EventsQuery) -> int | None:
    header = request.headers.get("Last-Event-ID")
    if header is None or not header.strip():
        return query.last_event_id
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > INT64_MAX:
        raise ApiError(
            422,
            "The request is not valid.",
            details=[("Last-Event-ID", "must be an event id (a non-negative integer)")],
        )
    return int(text)


def _type_filter(types: str | None) -> tuple[frozenset[str], tuple[str, ...]] | None:
    if not types:
        return None
    names = [name for name in types.split(",") if name]
    exact = frozenset(name for name in names if not name.endswith("*"))
    prefixes = tuple(name.rstrip("*") for name in names if name.endswith("*"))
    return exact, prefixes


def _matches(wanted: tuple[frozenset[str], tuple[str, ...]] | None, type_: str) -> bool:
    if wanted is None:
        return True
    exact, prefixes = wanted
    return type_ in exact or type_.startswith(prefixes)


def account_of(event: Any) -> str | None:
    """The name of the account a stored event is about, if any."""
    if event.account is None and isinstance(event.data.get("account"), str):
        return event.data["account"]  # an account event about a name (login, logout)
    return event.account


def encode_event(event: Any) -> bytes:
    """One SSE message for a stored event (EventRecord)."""
    data = event.data
    account, chat = account_of(event), event.chat
    if chat is None and isinstance(data.get("chat"), int):
        chat = data["chat"]  # a chat whose row is gone
    payload = {
        "id": event.id,
        "type": event.type,
        "account": account,
        "chat": chat,
        "created_at": _iso(event.created_at),
        "data": data,
    }
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    name = "".join(ch for ch in event.type if ch not in "\r\n")
    return f"id: {event.id}\nevent: {name}\ndata: {data}\n\n".encode()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def deliverable(
    position: int, page: Sequence[Any], now: datetime, watched: float = 0.0
) -> tuple[list[Any], bool]:
    """The events of `page` (ids > position, ascending) that may be sent now, and whether the
    rest is held back: an id gap before a recent event (GAP_RECENT_SECONDS by the clock that
    stamped it) may still be filled by a transaction that has not committed yet, so the stream
    waits for it until it has `watched` the gap for GAP_GRACE_SECONDS (by its own clock: a
    writer on another host may be ahead or behind)."""
    ready = []
    expected = position + 1
    recent = timedelta(seconds=GAP_RECENT_SECONDS)
    for event in page:
        # `watched` is the time spent on the gap at `position`; one further on is new
        waited = watched if not ready else 0.0
        if event.id != expected and waited < GAP_GRACE_SECONDS and now - event.created_at < recent:
            return ready, True
        ready.append(event)
        expected = event.id + 1
    return ready, False


class _Stream:
    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        repo: Any,
        event_log: Any,
        wanted: tuple[frozenset[str], tuple[str, ...]] | None,
        stop: asyncio.Event,
        channel: str | None = None,
        account: str | None = None,
    ) -> None:
        self.channel = channel
        self.account = account
        self.request = request
        self.response = response
        self.repo = repo
        self.event_log = event_log
        self.wanted = wanted
        self.stop = stop
        self.loop = asyncio.get_running_loop()
        self.last_write = self.loop.time()
        self.gap: tuple[int, float] | None = None  # the position held at, since (loop time)

    async def run(self, position: int) -> None:
        try:
            await self._write(f"retry: {RETRY_MS}\n\n".encode())
            position, held = await self._flush(position)  # the replay
            while not self.stop.is_set() and not self._client_gone():
                if held:  # an id gap may still fill: look again shortly
                    await self._wait(position, GAP_POLL_SECONDS, events=False)
                else:
                    timeout = min(
                        DISCONNECT_CHECK_SECONDS,
                        max(0.0, self.last_write + HEARTBEAT_SECONDS - self.loop.time()),
                    )
                    await self._wait(position, timeout, events=True)
                if self.stop.is_set():
                    break
                if held or self.event_log.last_id > position:
                    position, held = await self._flush(position)
                if self.loop.time() - self.last_write >= HEARTBEAT_SECONDS:
                    await self._write(b": heartbeat\n\n")
        except ConnectionResetError:  # the client went away mid-write (aiohttp's subclass too)
            log.debug("event stream client disconnected")
        except Exception as exc:  # e.g. the database went away mid-stream
            # The response has started: no error shape now. The client reconnects and resumes.
            log.warning("event stream ended: %s: %s", type(exc).__name__, exc)

    async def _flush(self, position: int) -> tuple[int, bool]:
        """Send every stored event after `position` (paged); returns the new position."""
        while not self.stop.is_set():
            page = await self.repo.events_since(position, limit=REPLAY_PAGE)
            # Wall and loop time, not the injected clock: the grace waits for real transactions.
            gap, seen = self.gap or (None, 0.0)
            watched = self.loop.time() - seen if gap == position else 0.0
            ready, held = deliverable(position, page, datetime.now(UTC), watched)
            for event in ready:
                if (
                    _matches(self.wanted, event.type)
                    and (self.channel is None or event.channel == self.channel)
                    and (self.account is None or account_of(event) == self.account)
                ):
                    await self._write(encode_event(event))
                position = event.id
            if held:
                if gap != position:  # a new gap: watched from now on
                    self.gap = (position, self.loop.time())
                return position, True
            if len(page) < REPLAY_PAGE:
                break
        return position, False

    async def _write(self, data: bytes) -> None:
        await self.response.write(data)
        self.last_write = self.loop.time()

    def _client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def _wait(self, position: int, timeout: float, *, events: bool) -> None:
        """Until a newer event (if `events`), a stop, or `timeout` seconds."""
        if timeout <= 0:
            return
        waiters = {asyncio.ensure_future(self.stop.wait())}
        if events:
            waiters.add(asyncio.ensure_future(self.event_log.wait_after(position, timeout)))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
