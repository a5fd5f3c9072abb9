"""Fixtures for the speech fakes; import them into a conftest.py to use them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.providers.elevenlabs_fake import FakeElevenLabs
from tests.providers.openai_audio_fake import FakeOpenAIAudio


@pytest.fixture
async def fake_openai_audio() -> AsyncIterator[FakeOpenAIAudio]:
    fake = FakeOpenAIAudio()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def fake_elevenlabs() -> AsyncIterator[FakeElevenLabs]:
    fake = FakeElevenLabs()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
