"""Shared machinery for the fake provider servers (OpenAI, Gemini, ElevenLabs).

Each fake is a small aiohttp app on a free loopback port that the *real* SDK talks to.
Faults are queued per fake so a test can script "two 500s, then a 429 with Retry-After,
then success" and every request is recorded so tests can inspect the exact payload.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One scripted misbehaviour, consumed by the next matching request."""

    status: int = 500
    retry_after: float | None = None
    hang: bool = False
    body: dict[str, Any] | None = None
    path_contains: str = ""


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, Any] = field(default_factory=dict)


class FakeProviderServer:
    """Base class: subclasses add routes in `routes()` and call `self.record()` in handlers."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.latency: float = 0.0
        self._faults: deque[Fault] = deque()
        self._runner: web.AppRunner | None = None
        self._hung: list[asyncio.Event] = []
        self._outage: Fault | None = None
        self._outage_over = asyncio.Event()
        self.outage_requests = 0  # requests the current/last outage answered
        self.port: int = 0
        self.request_seen = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:  # pragma: no cover - abstract
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeProviderServer:
        app = web.Application(middlewares=[self._fault_middleware], client_max_size=64 * 2**20)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for event in self._hung:
            event.set()
        self._outage_over.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeProviderServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults ----------------------------------------------------------------------------
    def fail_next(self, times: int = 1, **fault: Any) -> None:
        """Queue `times` copies of a fault (status=500, retry_after=…, hang=True, …)."""
        for _ in range(times):
            self._faults.append(Fault(**fault))

    def clear_faults(self) -> None:
        self._faults.clear()

    def start_outage(self, **fault: Any) -> None:
        """Fail every request (status=500, retry_after=…, hang=True, path_contains=…) until
        `end_outage()`: a provider that is down for as long as the test says, however many
        requests come. Queued `fail_next` faults go first."""
        self._outage = Fault(**fault)
        self._outage_over = asyncio.Event()
        self.outage_requests = 0

    def end_outage(self) -> None:
        """The provider works again: hung requests (if their client still waits) and every
        later one are answered normally."""
        self._outage = None
        self._outage_over.set()

    def _take_fault(self, path: str) -> Fault | None:
        for fault in list(self._faults):
            if fault.path_contains in path:
                self._faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(request.path)
        outage = self._outage
        if fault is None and outage is not None and outage.path_contains in request.path:
            self.outage_requests += 1
            if outage.hang:
                await self._outage_over.wait()
                if request.transport is None or request.transport.is_closing():
                    # The client gave up (its timeout): no answer into a closed socket.
                    raise asyncio.CancelledError
                return await handler(request)
            await self.record(request)
            fault = outage
        elif fault is None:
            return await handler(request)
        else:
            await self.record(request)
        if fault.hang:
            released = asyncio.Event()
            self._hung.append(released)
            await released.wait()
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        body = fault.body or {
            "error": {"message": f"injected {fault.status}", "code": fault.status}
        }
        return web.json_response(body, status=fault.status, headers=headers)

    # -- recording -------------------------------------------------------------------------
    async def record(self, request: web.Request) -> RecordedRequest:
        parsed: Any = None
        form: dict[str, Any] = {}
        body = b""
        ctype = request.headers.get("Content-Type", "")
        if "multipart" in ctype:
            # post() consumes the stream itself, so the raw body is not read first
            post = await request.post()
            for key, value in post.items():
                form[key] = value.file.read() if hasattr(value, "file") else value
        else:
            body = await request.read()
            if "json" in ctype and body:
                parsed = json.loads(body)
        rec = RecordedRequest(
            request.method, request.path, dict(request.headers), body, parsed, form
        )
        self.requests.append(rec)
        self.request_seen.set()
        return rec
