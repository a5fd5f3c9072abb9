"""The owner's HTTP tools (`[tools.http.*]`), run for the model (the brain's ToolBox).

A call is checked against the tool's declaration (only its declared arguments; the URL's
placeholders filled, percent-encoded; a GET's other arguments in the query, a POST's in a JSON
body), refused unless its host is in `[tools] allowed_hosts` (checked again on the built URL,
redirects not followed), sent with the headers whose values come from the environment, under
`[tools] timeout`; the model gets the excerpt of the JSON answer, or the error as text: a tool
failing never fails the answer. Every call is logged (name, status, duration, never the
headers) and stored with the reply (`flags.tools`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from twin.config_tools import HttpTool, ToolsSettings
from twin.domain.tools import (
    ToolCall,
    ToolSpec,
    ToolUse,
    excerpt,
    host_allowed,
    placeholders,
    render_url,
)

__all__ = ["HttpTools"]

log = logging.getLogger("twin.tools")

MAX_ANSWER_BYTES = 1024 * 1024


class HttpTools:
    def __init__(self, settings: ToolsSettings) -> None:
        self._settings = settings
        self._specs = tuple(
            ToolSpec(name, tool.description, tool.parameters)
            for name, tool in settings.http.items()
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return self._specs

    @property
    def max_calls(self) -> int:
        return self._settings.max_calls

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout),
                headers={"User-Agent": "twin-tools"},
            )
        return self._session

    async def call(self, call: ToolCall) -> ToolUse:
        tool = self._settings.http.get(call.name)
        if tool is None:
            return ToolUse(call.name, call.arguments, False, f"error: no tool named {call.name}")
        arguments = {
            key: value
            for key, value in call.arguments.items()
            if key in (tool.parameters.get("properties") or {})
        }
        started = time.perf_counter()
        status: int | None = None
        try:
            url = render_url(tool.url, arguments)
            if not host_allowed(url, self._settings.allowed_hosts):
                raise PermissionError("its host is not in [tools] allowed_hosts")
            rest = {k: v for k, v in arguments.items() if k not in placeholders(tool.url)}
            status, body = await self._send(tool, url, rest)
            text = _answer_excerpt(body, tool.excerpt)
            ok = 200 <= status < 300
            result = text if ok else f"error: HTTP {status}: {text[:300]}"
        except KeyError as exc:
            ok, result = False, f"error: missing argument {exc.args[0]}"
        except (aiohttp.ClientError, TimeoutError, OSError, PermissionError, ValueError) as exc:
            ok, result = False, f"error: {type(exc).__name__}: {exc}"
        duration = round((time.perf_counter() - started) * 1000, 1)
        log.info("tool %s called: %s in %.1f ms", call.name, status if status else result, duration)
        return ToolUse(call.name, arguments, ok, result, status, duration)

    async def _send(self, tool: HttpTool, url: str, rest: dict[str, Any]) -> tuple[int, bytes]:
        headers = {name: os.environ.get(variable, "") for name, variable in tool.headers.items()}
        missing = [variable for variable in tool.headers.values() if variable not in os.environ]
        if missing:
            raise ValueError(f"the environment lacks {', '.join(missing)}")
        options: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if tool.method == "GET":
            options["params"] = {
                k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()
            }
        else:
            options["json"] = rest
        async with asyncio.timeout(self._settings.timeout):
            async with self._http().request(tool.method, url, **options) as response:
                body = await response.content.read(MAX_ANSWER_BYTES)
                return response.status, body


def _answer_excerpt(body: bytes, path: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:2000]
    return excerpt(data, path)
