"""Small HTTP helpers shared by the provider adapters (no SDK types)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait from `retry-after-ms`, `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def parse_duration(value: object) -> float | None:
    """Google's protobuf Duration as JSON ("37s", "1.5s") → seconds."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            return None
    return None
