"""Small HTTP helpers of the provider adapters (no SDK types); Retry-After and retryable
statuses are twin.retry's."""

from __future__ import annotations


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
