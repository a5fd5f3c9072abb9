"""Fixtures for the chat-model fakes; import them into a conftest.py to use them.

Each fake is started on a free loopback port for one test and stopped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.providers.gemini_fake import FakeGemini
from tests.providers.openai_fake import FakeOpenAI


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
