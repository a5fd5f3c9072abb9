"""Domain errors of the brain; provider adapters translate SDK exceptions into these."""

from __future__ import annotations

from twin.errors import AdapterError, RateLimited
from twin.retry import is_retryable_status

__all__ = ["LLMError", "LLMRateLimited", "LLMUnavailable", "status_error"]


class LLMError(AdapterError):
    """A language-model call failed.

    `retryable` is True for transient failures (timeouts, connection errors, 408/409/429/5xx);
    False for errors a retry cannot fix (bad request, authentication, unknown model).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)  # (RateLimited.__init__ in the MRO of LLMRateLimited)
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.transient = retryable
        self.retry_after = retry_after


class LLMRateLimited(LLMError, RateLimited):
    """HTTP 429 (or quota exhausted): `retry_after` seconds when the provider said so."""

    def __init__(
        self,
        message: str = "rate limited",
        *,
        provider: str = "",
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        LLMError.__init__(
            self,
            message,
            provider=provider,
            status=status,
            retryable=True,
            retry_after=retry_after,
        )


class LLMUnavailable(LLMError):
    """No provider could answer after retries and fallback; try again after `retry_after`
    seconds (None: the caller's own backoff)."""

    def __init__(
        self, message: str = "no LLM provider available", *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after)


def status_error(
    message: str, *, provider: str, status: int, retry_after: float | None
) -> LLMError:
    """A provider's HTTP error status as the brain's error: 429 is LLMRateLimited, the
    statuses twin.retry calls transient are retryable."""
    if status == 429:
        return LLMRateLimited(message, provider=provider, status=status, retry_after=retry_after)
    return LLMError(
        message,
        provider=provider,
        status=status,
        retryable=is_retryable_status(status),
        retry_after=retry_after,
    )
