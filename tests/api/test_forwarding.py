"""Requests for an account another process serves (twin.api.forwarding): the signature that
marks a forwarded request, and the middleware between two real aiohttp servers — the one
that received the request ("front") and the one that serves the account ("owner"). The whole
daemon's case (three `twin run` on PostgreSQL) is in tests/e2e/test_cluster.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.api.conftest import assert_error
from tests.e2e.process import free_port
from twin.api.forwarding import (
    FORWARDING,
    HEADER,
    TOLERANCE_SECONDS,
    Forwarding,
    Serving,
    forwarded,
    forwarding_middleware,
    signature,
    verified,
)
from twin.api.middlewares import error_middleware, request_id_middleware
from twin.errors import ServedElsewhere

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_a_signature_binds_the_time_method_path_process_and_body() -> None:
    header = signature(KEY, "POST", "/a?b=1", "p1", b"{}", NOW)
    assert verified(KEY, header, "POST", "/a?b=1", "p1", b"{}", NOW + TOLERANCE_SECONDS)
    assert not verified(KEY, header, "POST", "/a?b=1", "p1", b"{}", NOW + TOLERANCE_SECONDS + 1)
    assert not verified(KEY, header, "POST", "/a?b=2", "p1", b"{}", NOW)
    assert not verified(KEY, header, "PUT", "/a?b=1", "p1", b"{}", NOW)
    assert not verified(KEY, header, "POST", "/a?b=1", "p2", b"{}", NOW)  # another's
    assert not verified(KEY, header, "POST", "/a?b=1", "p1", b"{ }", NOW)
    assert not verified(b"o" * 32, header, "POST", "/a?b=1", "p1", b"{}", NOW)
    stamp = str(int(NOW))
    for forged in (
        "",
        "t=1800000000",
        "v1=00",
        "t=x,v1=00",
        "t=²,v1=00",  # a digit to str.isdigit, not to int()
        f"t={'1' * 5000},v1=00",  # too long for int()
        f"t={stamp},v1=é",  # not ASCII
        f"t={stamp},v1=\udcff",  # what an undecodable header byte becomes
        header.replace("v1=", "v1=0"),
    ):
        assert not verified(KEY, forged, "POST", "/a?b=1", "p1", b"{}", NOW)


class Owner:
    """The process serving account "far": echoes what reached it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = asyncio.Event()  # for the view that hangs
        self.release.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            {
                "forwarded": forwarded(request),
                "authorization": request.headers.get("Authorization"),
                "request_id": request.headers.get("X-Request-ID"),
                "body": body,
                "path": request.raw_path,
                "x_forwarded_for": request.headers.get("X-Forwarded-For"),
            }
        )
        if request.query.get("moved"):  # the account moved on meanwhile
            raise ServedElsewhere("far", "account 'far' is served by another twin process")
        await self.release.wait()
        return web.json_response(
            {"served": "owner", "echo": body.decode()},
            status=201,
            headers={"X-Custom": "kept", "X-RateLimit-Remaining": "7"},
        )


def app_with(me: str, view: Any, find: Any, *, timeout: float = 5.0) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware(1 << 20), forwarding_middleware()]
    )
    app[FORWARDING] = Forwarding(KEY, me, find, timeout=timeout)
    app.router.add_route("*", "/api/{tail:.*}", view)

    async def close(app: web.Application) -> None:
        await app[FORWARDING].close()

    app.on_cleanup.append(close)
    return app


async def refuse(request: web.Request) -> web.StreamResponse:
    await request.read()
    raise ServedElsewhere("far", "account 'far' is served by another twin process")


@pytest.fixture
async def servers() -> AsyncIterator[Any]:
    owner = Owner()
    where: dict[str, str | None] = {}

    async def find(account: str) -> Serving | None:
        assert account == "far"
        url = where.get("url")
        return Serving("owner", url) if url is not None else None

    owner_server = TestServer(app_with("owner", owner.handle, find))
    front_server = TestServer(app_with("front", refuse, find, timeout=0.5))
    await owner_server.start_server()
    await front_server.start_server()
    where["url"] = str(owner_server.make_url("")).rstrip("/")
    try:
        yield owner, owner_server, front_server, where
    finally:
        owner.release.set()
        await front_server.close()
        await owner_server.close()


async def post(server: TestServer, path: str = "/api/thing?x=1", **kw: Any) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.make_url(path), **kw) as response,
    ):
        return response.status, dict(response.headers), await response.json()


async def test_the_owner_answers_a_request_the_front_received(servers) -> None:
    owner, _owner_server, front, _ = servers
    status, headers, body = await post(
        front,
        data=b'{"text": "hi"}',
        headers={"Authorization": "Bearer the-callers", "X-Request-ID": "rid-1"},
    )
    assert (status, body) == (201, {"served": "owner", "echo": '{"text": "hi"}'})
    assert headers["X-Custom"] == "kept"
    assert "X-RateLimit-Remaining" not in headers  # the owner's count is not the front's
    [seen] = owner.seen
    assert seen["forwarded"] is True  # signed: counted once, never forwarded again
    assert seen["authorization"] == "Bearer the-callers"  # checked again by the owner
    assert (seen["request_id"], seen["path"]) == ("rid-1", "/api/thing?x=1")
    assert seen["x_forwarded_for"] == "127.0.0.1"


async def test_a_forged_stale_misaddressed_or_replayed_header_is_an_ordinary_request(
    servers,
) -> None:
    owner, owner_server, _front, _ = servers
    path = "/api/thing?x=1"
    now = time.time()
    fresh = signature(KEY, "POST", path, "owner", b"{}", now)
    headers = [
        "t=1,v1=00",
        f"t={int(now)},v1=é",  # not ASCII: refused, not a 500
        signature(KEY, "POST", path, "owner", b"{}", NOW),  # long ago
        signature(b"x" * 32, "POST", path, "owner", b"{}", now),  # another key
        signature(KEY, "POST", path, "front", b"{}", now),  # addressed to another process
        fresh,
        fresh,  # the same again: a replay
        "x=1," + fresh,  # the same signature dressed up
    ]
    for header in headers:
        status, _, _ = await post(owner_server, path, data=b"{}", headers={HEADER: header})
        assert status == 201
    assert [seen["forwarded"] for seen in owner.seen] == [False] * 5 + [True, False, False]


async def test_the_path_reaches_the_owner_as_the_client_encoded_it(servers) -> None:
    owner, _owner_server, front, _ = servers
    path = "/api/a%7eb/%d0%b0/x%2fy?q=%d0%b0&r=a+b"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            URL(str(front.make_url("")).rstrip("/") + path, encoded=True), data=b"{}"
        ) as response,
    ):
        assert response.status == 201
    [seen] = owner.seen
    assert seen["forwarded"] is True and seen["path"] == path


async def test_one_hop_only_and_no_owner_is_the_409(servers) -> None:
    owner, _owner_server, front, where = servers
    # A header on the way in, verified or not, means: never forwarded from here.
    status, _, body = await post(front, data=b"{}", headers={HEADER: "t=1,v1=00"})
    assert status == 409 and owner.seen == []
    # The owner finds the account moved on meanwhile: 409, not forwarded a second time.
    status, _, body = await post(front, "/api/thing?moved=1", data=b"{}")
    assert status == 409 and len(owner.seen) == 1
    assert "served by another twin process" in assert_error(body, "conflict")["message"]
    where["url"] = None  # no live process names an address for it
    status, _, body = await post(front, data=b"{}")
    assert status == 409 and len(owner.seen) == 1
    assert_error(body, "conflict")


async def test_an_unreachable_owner_is_the_409_and_a_silent_one_a_502(servers) -> None:
    owner, _owner_server, front, where = servers
    where["url"] = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    status, _, body = await post(front, data=b"{}")
    assert status == 409  # nothing was sent: the answer it would have had without forwarding
    assert_error(body, "conflict")

    where["url"] = str(_owner_server.make_url("")).rstrip("/")
    owner.release.clear()  # the owner takes the request and does not answer in time
    status, _, body = await post(front, data=b"{}")
    assert status == 502 and len(owner.seen) == 1
    assert "check before trying again" in assert_error(body, "upstream_error")["message"]
