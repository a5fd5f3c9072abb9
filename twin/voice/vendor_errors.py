"""Vendor exception → `Failure` verdicts for the retry loop (SDK types stop here)."""

from __future__ import annotations

import httpx

from twin.retry import is_retryable_status, parse_retry_after
from twin.voice.retry import Failure


def _http_failure(status: int, headers: dict[str, str] | httpx.Headers | None) -> Failure:
    return Failure(
        message=f"HTTP {status}",
        status=status or None,
        retry_after=parse_retry_after(headers or {}),
        transient=is_retryable_status(status),
    )


def classify_openai(exc: BaseException) -> Failure | None:
    """openai SDK errors: status errors keep Retry-After; timeouts/connection errors retry."""
    import openai  # imported by the caller's adapter already: only configured SDKs load

    if isinstance(exc, openai.APIStatusError):
        return _http_failure(exc.status_code, exc.response.headers)
    if isinstance(exc, openai.APITimeoutError):
        return Failure(message="timeout")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(message="connection failed")
    return None


def classify_elevenlabs(exc: BaseException) -> Failure | None:
    """elevenlabs SDK errors (ApiError) and the httpx transport errors it lets through."""
    from elevenlabs.core.api_error import ApiError  # loaded with its adapter only

    if isinstance(exc, ApiError):
        return _http_failure(exc.status_code or 0, exc.headers)
    if isinstance(exc, httpx.TimeoutException):
        return Failure(message="timeout")
    if isinstance(exc, httpx.TransportError):
        return Failure(message=f"connection failed: {type(exc).__name__}")
    return None
