"""aiohttp's own answers in the one error shape: missing static files, unreadable bodies, and
requests its HTTP parser refuses (served by `twin.api.server.ApiRunner`, as `twin run` does)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.api.conftest import AUTH, TOKEN, FakeDatabase, api_settings, assert_error
from twin.api.server import MAX_LINE_SIZE, ApiRunner
from twin.app import Adapters, create_app


@pytest.mark.parametrize(
    "path", ["/docs/static/missing.js", "/docs/static/", "/docs/static/swagger-ui.css/x"]
)
async def test_missing_static_files_are_404_in_the_error_shape(client, path) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert response.content_type == "application/json"
    assert_error(await response.json(), "not_found", response.headers["X-Request-ID"])


async def test_present_static_files_are_served(client) -> None:
    response = await client.get("/docs/static/twin-docs.js")
    assert response.status == 200 and "javascript" in response.content_type


async def test_a_body_that_cannot_be_decoded_is_400(client) -> None:
    response = await client.post(
        "/echo",
        data=b"this is not gzip",
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 400
    error = assert_error(await response.json(), "bad_request", response.headers["X-Request-ID"])
    assert error["message"] == (
        "The request body could not be read: Can not decode content-encoding."
    )


class ApiTestServer(TestServer):
    """The app served the way `twin run` serves it."""

    async def _make_runner(self, **kwargs: Any) -> ApiRunner:
        return ApiRunner(self.app, **kwargs)


@pytest.fixture
async def server() -> AsyncIterator[ApiTestServer]:
    app = create_app(api_settings(), adapters=Adapters(database=FakeDatabase()))
    server = ApiTestServer(app)
    await server.start_server(max_line_size=MAX_LINE_SIZE)  # as `twin run` serves
    yield server
    await server.close()


async def exchange(server: TestServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = (line.partition(":") for line in lines[1:] if line)
        headers = {name.lower(): value.strip() for name, _, value in fields}
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        return status, headers, body
    finally:
        writer.close()
        await writer.wait_closed()


CHUNKED = (
    b"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"GARBAGE\r\n\r\n", "Invalid method encountered"),
        (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", "Bad status line"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "Invalid header token"),
        (b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\n\r\n", "Got more than 32768 bytes when reading"),
        (b"GET /health HTTP/1.1\r\nX-A: " + b"a" * 10_000 + b"\r\n\r\n", "Got more than"),
        (b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "Invalid character in Content"),
        (CHUNKED, "Invalid character in chunk size"),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            "Transfer-Encoding can't be present with Content-Length",
        ),
    ],
)
async def test_requests_the_parser_refuses_are_400_in_the_error_shape(
    server, raw, reason, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        status, headers, body = await exchange(server, raw)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = assert_error(json.loads(body), "bad_request", headers["x-request-id"])
    assert error["message"].startswith(f"The request is not valid HTTP: {reason}")
    # not echoed (the random request id, hex, may hold "aaaa" by chance: left out)
    shown = body.replace(headers["x-request-id"].encode(), b"")
    assert b"aaaa" not in shown and b"GARBAGE" not in shown and b"ZZ" not in shown
    # One line in the log, no traceback for a client's garbage.
    records = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    assert not [r for r in caplog.records if r.name == "aiohttp.server"]


async def test_well_formed_requests_are_served_as_before(server) -> None:
    status, headers, body = await exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["x-request-id"]
    # a query as long as the schema allows (2,000 four-byte characters, percent-encoded)
    query = b"%F0%9F%98%80" * 2000
    status, headers, body = await exchange(
        server, b"GET /health?q=" + query + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert status == 200 and json.loads(body)["status"] == "ok"
