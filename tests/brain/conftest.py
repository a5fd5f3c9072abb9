"""Brain tests: the provider fakes (until tests/conftest.py imports them suite-wide) and a
recorder that stands in for asyncio.sleep in backoff."""

from __future__ import annotations

import pytest

from tests.providers.fixtures import fake_gemini, fake_openai

__all__ = ["SleepRecorder", "fake_gemini", "fake_openai"]


class SleepRecorder:
    """An injectable `sleep` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()
