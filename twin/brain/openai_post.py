"""The hot call of the OpenAI adapter, `POST {base_url}/chat/completions` without streaming,
straight on aiohttp: the same request the SDK makes (its URL, headers and JSON body, taken from
the SDK's own client) and the same outcomes as the SDK's errors translated by
`twin.brain.openai_llm.translate_error` (status, Retry-After, retryable or not), for about a
third of the CPU: the SDK's transport (httpx over aiohttp), its request options and its
response models cost more than the rest of a reply (bench/pipeline.py). Streams, embeddings
and transcriptions stay on the SDK.

The answer is the JSON object as sent (a `dict`); its fields are read leniently, as the SDK's
models are built without validation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from twin.brain.errors import LLMError, status_error
from twin.errors import clip
from twin.retry import parse_retry_after

__all__ = ["DETAIL_CHARS", "ChatCompletionsPost", "completion_fields", "env_proxy"]

DETAIL_CHARS = 300  # of a provider's error text in an LLMError
SDK_CONNECTIONS = 1000  # openai's DEFAULT_CONNECTION_LIMITS.max_connections


class ChatCompletionsPost:
    """POSTs chat completion bodies to `url` with `headers`; one connection pool, opened on
    first use (inside the running loop) and closed by `aclose`."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float, provider: str) -> None:
        self.url = url
        self.headers = dict(headers)
        self.provider = provider
        # As the SDK's: `timeout` to connect and between two reads, not for the whole answer
        # (nor for a wait for a free connection of the pool).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None

    async def post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = self.provider
        if self._session is None or self._session.closed:
            # The API's headers go with each request, not as the session's defaults: aiohttp
            # also sends a session's defaults to a proxy, and would hand the API key to it as
            # its Proxy-Authorization.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=SDK_CONNECTIONS),  # the SDK's pool size
            )
            # As the SDK's httpx client, HTTP(S)_PROXY and NO_PROXY from the environment —
            # read here once: aiohttp's `trust_env` looks them (and ~/.netrc) up again in a
            # thread for every request, two thread hops that cost more than the request.
            self._proxy = env_proxy(self.url)
        try:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            async with self._session.post(
                self.url,
                data=payload,
                headers=self.headers,
                proxy=self._proxy,  # its credentials, if any, in its URL (aiohttp sends them)
            ) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except TimeoutError:
            raise LLMError(f"{name}: request timed out", provider=name, retryable=True) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LLMError(
                f"{name}: connection failed: {clip(str(exc) or type(exc).__name__, DETAIL_CHARS)}",
                provider=name,
                retryable=True,
            ) from None
        if status >= 400:
            raise _status_error(name, status, headers, raw)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise LLMError(
                f"{name}: the answer is not a JSON object: {clip(_text(raw), DETAIL_CHARS)}",
                provider=name,
                retryable=True,
            )
        return data

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`,
    unless `NO_PROXY` covers its host), credentials and all; None for none."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    target = urlsplit(url)
    proxies = getproxies()
    chosen = proxies.get(target.scheme or "http") or proxies.get("all")
    if not chosen or (target.hostname and proxy_bypass(target.hostname)):
        return None
    return chosen


def _status_error(name: str, status: int, headers: Mapping[str, str], raw: bytes) -> LLMError:
    message = f"{name}: HTTP {status}: {clip(_detail(raw), DETAIL_CHARS)}"
    retry_after = parse_retry_after(headers)
    return status_error(message, provider=name, status=status, retry_after=retry_after)


def _detail(raw: bytes) -> str:
    """The error's message as OpenAI-compatible servers send it (`{"error": {"message"}}`),
    else the body's text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return _text(raw)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    return _text(raw)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip() or "(empty)"


def completion_fields(data: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, Any]:
    """The first choice's message, its finish reason and the usage of an answer (missing
    parts: empty, None, None)."""
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    usage = data.get("usage")
    return (
        message if isinstance(message, dict) else {},
        choice.get("finish_reason"),
        usage if isinstance(usage, dict) else None,
    )
