"""Serving the app: aiohttp's runner, with its last plain-text answers in the one error shape.

Middlewares see every request aiohttp could parse. What they never see is answered by the
connection's protocol object (`RequestHandler.handle_error`): a request aiohttp's HTTP parser
refuses (bad request line, method or version, bad or oversized headers, bad Content-Length or
chunked framing: 400), an exception escaping the middlewares (500) and a handler timeout (504).
aiohttp has no setting or signal for these answers, and `web.run_app` builds its own runner, so:

* `ApiRequestHandler` overrides `handle_error` to answer in the error shape, with an
  X-Request-ID, logging the parser's complaint in one line (no traceback for client garbage);
* `ApiRunner` is `web.AppRunner` whose server makes `ApiRequestHandler`s;
* `run_app` is `web.run_app` (TCP only) with `ApiRunner` and the API's access log
  (twin.api.access), shutting down in the same order: the app first, then whatever tasks are
  left.

This relies on aiohttp internals that are stable in 3.x but not documented as extension points
(`AppRunner._make_server`, `Server._kwargs`/`_loop`); tests/api/test_http_errors.py sends raw
malformed requests, so an aiohttp upgrade that breaks it fails there, not in production.

Errors aiohttp answers *after* a response has started (a broken chunked body while streaming)
cannot be answered at all: the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from twin.api.access import AccessLogger
from twin.api.errors import error_response
from twin.api.middlewares import REQUEST_ID_HEADER, parse_error_message, request_id_of

log = logging.getLogger("twin.api")

_INTERNAL = "Internal server error; the daemon log has the details under this request id."
# The longest request line the server reads (aiohttp's default: 8190 bytes). A query valid by
# the schema must fit: 2,000 characters of a knowledge search are up to 24,000 bytes
# percent-encoded (12 per 4-byte character).
MAX_LINE_SIZE = 32 * 1024


class ApiRequestHandler(RequestHandler):
    """aiohttp's protocol, answering its own errors in the API's error shape."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another response
            raise ConnectionError("Response is sent already, cannot send an error response")
        rid = request_id_of(request)
        if status >= 500:
            if status == 504:
                text = "The request took too long to handle."
                log.warning("request from %s timed out", request.remote, extra={"request_id": rid})
            else:
                text = _INTERNAL
                log.error(
                    "error handling a request from %s",
                    request.remote,
                    exc_info=exc,
                    extra={"request_id": rid},
                )
        else:
            reason = parse_error_message(exc)
            text = f"The request is not valid HTTP: {reason}."
            log.info(
                "malformed HTTP request from %s: %s",
                request.remote,
                reason,
                extra={"request_id": rid},
            )
        response = error_response(status, text, rid)
        response.headers[REQUEST_ID_HEADER] = rid
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.force_close()
        return response


class ApiServer(web.Server):
    """`web.Server` making `ApiRequestHandler`s for its connections."""

    def __call__(self) -> RequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """`web.AppRunner` serving through `ApiServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return ApiServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )


def run_app(
    app: web.Application,
    *,
    sock: list[socket.socket],
    shutdown_timeout: float,
    access_log: logging.Logger | None,
    print: Callable[[str], None],  # the name web.run_app uses
) -> None:
    """Serve `app` on the listening sockets (bound by the caller, so a port in use is known
    before anything starts) until SIGINT/SIGTERM, like `web.run_app`."""
    loop = asyncio.new_event_loop()
    main = loop.create_task(
        _serve(
            app,
            sock=sock,
            shutdown_timeout=shutdown_timeout,
            access_log=access_log,
            print=print,
        )
    )
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():  # the app's own cleanup first
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_tasks(asyncio.all_tasks(loop), loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)


async def _serve(
    app: web.Application,
    *,
    sock: list[socket.socket],
    shutdown_timeout: float,
    access_log: logging.Logger | None,
    print: Callable[[str], None],
) -> None:
    runner = ApiRunner(
        app,
        max_line_size=MAX_LINE_SIZE,
        handle_signals=True,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
        access_log_class=AccessLogger,
    )
    await runner.setup()
    try:
        for listening in sock:
            await web.SockSite(runner, listening).start()
        names = ", ".join(sorted(str(s.name) for s in runner.sites))
        print(f"======== Running on {names} ========\n(Press CTRL+C to quit)")
        await asyncio.Event().wait()  # until SIGINT/SIGTERM raise GracefulExit
    finally:
        await runner.cleanup()


def _cancel_tasks(tasks: set[asyncio.Task[Any]], loop: asyncio.AbstractEventLoop) -> None:
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception while shutting down",
                    "exception": task.exception(),
                    "task": task,
                }
            )
