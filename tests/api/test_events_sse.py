"""GET /events: Server-Sent Events replay + live delivery, heartbeats, disconnects, shutdown.

Events are read incrementally with timeouts; nothing waits by sleeping.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from tests.api.conftest import AUTH, assert_error
from tests.api.test_control import control_settings
from twin import keys
from twin.api.views import event_stream
from twin.app import create_app

TIMEOUT = 5.0


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: dict | None = None
    comments: tuple[str, ...] = ()
    retry: str | None = None


async def read_message(response: aiohttp.ClientResponse, timeout: float = TIMEOUT) -> Message:
    """The next SSE block (up to a blank line), parsed."""
    message = Message()
    comments = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await response.content.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if message.id or message.event or message.data or comments or message.retry:
                    message.comments = tuple(comments)
                    return message
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                comments.append(value)
            elif field == "data":
                message.data = json.loads(value)
            elif field in ("id", "event", "retry"):
                setattr(message, field, value)


async def read_event(response: aiohttp.ClientResponse, timeout: float = TIMEOUT) -> Message:
    """The next message that is an event (skips the initial `retry:` and heartbeats)."""
    while True:
        message = await read_message(response, timeout)
        if message.event is not None:
            return message


@pytest.fixture
def settings(tmp_path):
    return control_settings(f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}", tmp_path)


@pytest.fixture
async def client(make_client, settings):
    return await make_client(settings=settings, real_database=True)


@pytest.fixture
def fast(monkeypatch):
    """Quick heartbeats and disconnect checks."""
    monkeypatch.setattr(event_stream, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(event_stream, "DISCONNECT_CHECK_SECONDS", 0.05)


async def emit(app, type_: str, **data) -> int:
    return await app[keys.EVENTS].emit(type_, data)


async def open_stream(client, *, headers=None, **params) -> aiohttp.ClientResponse:
    response = await client.get("/events", params=params, headers={**AUTH, **(headers or {})})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "X-Request-ID" in response.headers
    first = await read_message(response)
    assert first.retry == str(event_stream.RETRY_MS)
    return response


def streams(app) -> event_stream.EventStreams:
    return event_stream.streams_of(app)


async def test_replays_after_last_event_id_then_streams_live(client) -> None:
    first = await emit(client.app, "test.one", n=1)
    second = await emit(client.app, "test.two", n=2)
    third = await emit(client.app, "test.three", n=3)
    response = await open_stream(client, headers={"Last-Event-ID": str(first)})

    replayed = [await read_event(response), await read_event(response)]
    assert [(m.id, m.event) for m in replayed] == [
        (str(second), "test.two"),
        (str(third), "test.three"),
    ]
    data = replayed[0].data
    assert data is not None
    assert {k: v for k, v in data.items() if k != "created_at"} == {
        "id": second,
        "type": "test.two",
        "account": None,
        "chat": None,
        "data": {"n": 2},
    }
    created = datetime.fromisoformat(data["created_at"])
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)

    live = await emit(client.app, "test.live", text="line one\nline two")
    message = await read_event(response)
    assert (message.id, message.event) == (str(live), "test.live")
    assert message.data is not None and message.data["data"] == {"text": "line one\nline two"}
    response.close()


async def test_replay_is_paged(client, monkeypatch) -> None:
    monkeypatch.setattr(event_stream, "REPLAY_PAGE", 3)
    ids = [await emit(client.app, "test.page", n=n) for n in range(8)]
    response = await open_stream(client, last_event_id="0")
    received = [int((await read_event(response)).id or 0) for _ in ids]
    assert received == ids
    response.close()


async def test_query_parameter_and_header_precedence(client) -> None:
    first = await emit(client.app, "test.a")
    second = await emit(client.app, "test.b")
    response = await open_stream(client, last_event_id=str(first))
    assert (await read_event(response)).id == str(second)
    response.close()
    # The header (what EventSource sends on reconnect) wins over the URL's parameter.
    response = await open_stream(
        client, headers={"Last-Event-ID": str(second)}, last_event_id=str(first)
    )
    third = await emit(client.app, "test.c")
    assert (await read_event(response)).id == str(third)
    response.close()


async def test_without_an_id_only_new_events_are_sent(client) -> None:
    await emit(client.app, "test.old")
    response = await open_stream(client)
    new = await emit(client.app, "test.new")
    message = await read_event(response)
    assert (message.id, message.event) == (str(new), "test.new")
    response.close()


async def test_an_id_beyond_the_log_is_capped(client) -> None:
    await emit(client.app, "test.old")
    response = await open_stream(client, headers={"Last-Event-ID": "999999"})
    new = await emit(client.app, "test.new")
    assert (await read_event(response)).id == str(new)
    response.close()


async def test_types_filter(client) -> None:
    response = await open_stream(client, types="chat.*,settings.changed")
    await emit(client.app, "reply.sent")
    await emit(client.app, "chatter")  # "chat.*" means the "chat." prefix
    paused = await emit(client.app, "chat.paused")
    await emit(client.app, "settings.changed.not")
    changed = await emit(client.app, "settings.changed")
    assert [(await read_event(response)).id for _ in range(2)] == [str(paused), str(changed)]
    response.close()


async def test_pause_events_arrive_on_the_stream(client) -> None:
    repo = client.app[keys.DATABASE].repo
    account_id = await client.app[keys.INTAKE].account_id("default")
    await repo.upsert_chat(account_id, 77)
    response = await open_stream(client, types="chat.paused")
    assert (await client.post("/chats/77/pause", json={}, headers=AUTH)).status == 200
    message = await read_event(response)
    assert message.event == "chat.paused"
    assert message.data is not None and message.data["data"]["chat"] == 77
    assert (message.data["account"], message.data["chat"]) == ("default", 77)
    response.close()


async def test_the_envelope_names_the_account_and_chat_as_the_api_does(client) -> None:
    """Issue 12.5: not the database's ids (`account_id: 1`, `chat_id: 1`) but the account's name
    and the chat's Telegram peer id, as GET /chats and GET /messages show them."""
    repo = client.app[keys.DATABASE].repo
    other = (await repo.get_or_create_account("work")).id  # ids differ from the peer's
    chat, _ = await repo.upsert_chat(other, 4242)
    assert (other, chat.id) != (4242, 4242)
    replayed = await client.app[keys.EVENTS].emit(
        "reply.sent", {"reply": 9, "bubbles": 1}, account_id=other, chat_id=chat.id
    )
    response = await open_stream(client, last_event_id=str(replayed - 1))
    message = await read_event(response)
    assert message.data is not None
    assert {k: v for k, v in message.data.items() if k != "created_at"} == {
        "id": replayed,
        "type": "reply.sent",
        "account": "work",
        "chat": 4242,
        "data": {"reply": 9, "bubbles": 1},
    }
    chats = await client.get("/chats", params={"account": "work"}, headers=AUTH)
    assert [c["id"] for c in (await chats.json())["chats"]] == [message.data["chat"]]
    response.close()


@pytest.mark.parametrize("types", ["nope", "reply.sent,nope", "nope.*", "re*ly", "test.one"])
async def test_unknown_event_types_are_422_listing_the_known_ones(client, types) -> None:
    response = await client.get("/events", params={"types": types}, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    [detail] = error["details"]
    assert detail["field"] == "types"
    assert "unknown event type" in detail["error"]
    assert "reply.sent" in detail["error"] and "chat.paused" in detail["error"]
    assert streams(client.app).active == 0


@pytest.mark.parametrize("types", ["reply.*", "*", "reply*", "chat.paused,message.*"])
async def test_known_types_and_prefixes_are_accepted(client, types) -> None:
    response = await open_stream(client, types=types)
    response.close()


async def test_heartbeat_comment(client, fast) -> None:
    response = await open_stream(client)
    message = await read_message(response)
    assert message.comments == ("heartbeat",)
    assert (message.id, message.event, message.data) == (None, None, None)
    # …and events still flow between heartbeats
    new = await emit(client.app, "test.after_heartbeat")
    assert (await read_event(response)).id == str(new)
    response.close()


async def test_head_answers_headers_only(client) -> None:
    async with asyncio.timeout(TIMEOUT):
        response = await client.head("/events", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert await streams(client.app).wait_idle(TIMEOUT)


@pytest.mark.parametrize(
    ("headers", "query", "field"),
    [
        ({"Last-Event-ID": "abc"}, "", "Last-Event-ID"),
        ({"Last-Event-ID": "-1"}, "", "Last-Event-ID"),
        ({"Last-Event-ID": "\u00b2"}, "", "Last-Event-ID"),  # a digit, but not 0-9
        ({}, "last_event_id=-1", "last_event_id"),
        ({}, "types=a%20b", "types"),
    ],
)
async def test_bad_positions_and_filters_are_422(client, headers, query, field) -> None:
    response = await client.get(f"/events?{query}", headers={**AUTH, **headers})
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert [d["field"] for d in error["details"]] == [field]
    assert streams(client.app).active == 0


async def test_closing_the_client_frees_the_server_side(client) -> None:
    responses = [await open_stream(client) for _ in range(2)]
    assert streams(client.app).active == 2
    for response in responses:
        response.close()
    assert await streams(client.app).wait_idle(TIMEOUT)
    assert streams(client.app).active == 0


async def test_a_gone_client_is_noticed_without_handler_cancellation(settings, monkeypatch) -> None:
    """aiohttp's production server (run_app) does not cancel handlers on disconnect: the
    stream must notice the closed transport itself, long before its next heartbeat."""
    monkeypatch.setattr(event_stream, "HEARTBEAT_SECONDS", 3600.0)
    monkeypatch.setattr(event_stream, "DISCONNECT_CHECK_SECONDS", 0.05)
    app = create_app(settings)
    runner = web.AppRunner(app)  # handler_cancellation=False, as web.run_app
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{port}/events", headers=AUTH)
            await read_message(response)
            assert streams(app).active == 1
            response.close()
            assert await streams(app).wait_idle(TIMEOUT)
    finally:
        await runner.cleanup()


async def test_shutdown_ends_open_streams_promptly(settings, monkeypatch) -> None:
    monkeypatch.setattr(event_stream, "HEARTBEAT_SECONDS", 3600.0)
    monkeypatch.setattr(event_stream, "DISCONNECT_CHECK_SECONDS", 3600.0)
    app = create_app(settings)
    app.on_shutdown.append(event_stream.stop_event_streams)  # what the app factory must wire
    runner = web.AppRunner(app, shutdown_timeout=60.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"http://127.0.0.1:{port}/events", headers=AUTH)
        await read_message(response)
        assert streams(app).active == 1
        async with asyncio.timeout(TIMEOUT):  # not the 60 s shutdown_timeout
            await runner.cleanup()
        assert streams(app).active == 0
        assert streams(app).closing
        async with asyncio.timeout(TIMEOUT):
            assert await response.content.read() == b""  # the stream ended cleanly


@dataclass(frozen=True)
class FakeEvent:
    id: int
    created_at: datetime


def test_id_gaps_wait_for_late_commits_only_while_young() -> None:
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    young = now - timedelta(seconds=event_stream.GAP_GRACE_SECONDS / 2)
    old = now - timedelta(seconds=event_stream.GAP_RECENT_SECONDS * 2)
    page = [FakeEvent(11, old), FakeEvent(12, young), FakeEvent(14, young)]
    ready, held = event_stream.deliverable(10, page, now)
    assert ([e.id for e in ready], held) == ([11, 12], True)  # 13 may still commit
    page = [FakeEvent(11, old), FakeEvent(13, old), FakeEvent(14, young)]
    ready, held = event_stream.deliverable(10, page, now)
    assert ([e.id for e in ready], held) == ([11, 13, 14], False)  # 12 never will
    assert event_stream.deliverable(10, [], now) == ([], False)


def test_a_gap_is_waited_for_by_the_readers_clock_whatever_the_writers() -> None:
    """Another host stamped the events: ahead of this one, the gap is not waited for past
    GAP_GRACE_SECONDS of watching it; behind (an event that looks older than the grace),
    it is still waited for — but not for events older than GAP_RECENT_SECONDS (a replay)."""
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    grace = event_stream.GAP_GRACE_SECONDS
    ahead = now + timedelta(minutes=5)
    behind = now - timedelta(seconds=grace * 3)
    replayed = now - timedelta(seconds=event_stream.GAP_RECENT_SECONDS + 1)
    for stamped in (ahead, behind):
        page = [FakeEvent(11, stamped), FakeEvent(13, stamped)]
        ready, held = event_stream.deliverable(10, page, now)
        assert ([e.id for e in ready], held) == ([11], True)  # the stream holds at 11
        assert event_stream.deliverable(11, page[1:], now, watched=grace / 2)[1] is True
        ready, held = event_stream.deliverable(11, page[1:], now, watched=grace)
        assert ([e.id for e in ready], held) == ([13], False)  # 12 is given up
    page = [FakeEvent(11, replayed), FakeEvent(13, replayed)]
    assert event_stream.deliverable(10, page, now, watched=0.0)[1] is False
    # the gap watched long enough is given up; a further one is a gap of its own
    page = [FakeEvent(13, now), FakeEvent(15, now)]
    ready, held = event_stream.deliverable(11, page, now, watched=grace * 2)
    assert ([e.id for e in ready], held) == ([13], True)  # 14 may still commit
