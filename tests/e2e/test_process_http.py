"""`twin run` serves through the API's own runner: aiohttp's parser errors come back in the one
error shape, and SIGTERM still stops the daemon cleanly."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.process import DaemonProcess

pytestmark = pytest.mark.e2e


async def test_twin_run_answers_malformed_http_in_the_error_shape(tmp_path):
    config = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        "stt": {"provider": "none"},
    }
    daemon = DaemonProcess(tmp_path, config, {"TWIN_SECURITY__SECRET_KEY": "process-http-key"})
    await daemon.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # the connection is closed after it
        writer.close()
        await writer.wait_closed()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), answer
        assert b"Content-Type: application/json" in head
        error = json.loads(body)["error"]
        assert error["type"] == "bad_request"
        assert error["message"] == "The request is not valid HTTP: Invalid header token."
        assert f"X-Request-ID: {error['request_id']}".encode() in head
    finally:
        assert daemon.terminate() == 0, daemon.output()
    log = daemon.output()
    assert "malformed HTTP request" in log and "Traceback" not in log
    # …and the access log has its line (no route: aiohttp answered before routing).
    [access] = [line for line in log.splitlines() if "twin.access" in line]
    assert f"[{error['request_id']}]" in access and " 400 " in access, access
    assert "route=unparsed" in access
    assert "twin stopped" in log
