"""Brain tests: a
recorder that stands in for asyncio.sleep in backoff."""

from __future__ import annotations

import pytest

__all__ = ["SleepRecorder"]


class SleepRecorder:
    """An injectable `sleep` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()
