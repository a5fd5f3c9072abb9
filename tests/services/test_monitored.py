"""Calls of a dependency report to the health registry: outages and refused credentials count as
the component failing, a refusal of one request does not, and a success after a failure
wakes the recovery listeners."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from twin.brain.errors import LLMError, LLMRateLimited, LLMUnavailable
from twin.clock import ManualClock
from twin.services.health import Health
from twin.services.monitored import is_down, monitored
from twin.voice.errors import AudioError, SpeechUnavailable, TooLong


class Speaker:
    """A dependency whose next call raises `error` (None: succeeds)."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.closed = False
        self.voice = "nova"

    async def synthesize(self, text: str) -> str:
        if self.error is not None:
            raise self.error
        return f"audio of {text}"

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("error", "down"),
    [
        (LLMUnavailable("no LLM provider available: openai: HTTP 500"), True),
        (LLMRateLimited(retry_after=3), True),
        (LLMError("openai: request timed out", retryable=True), True),
        (LLMError("openai: HTTP 401", status=401), True),  # nothing works until fixed
        (LLMError("openai: HTTP 400: content refused", status=400), False),
        (SpeechUnavailable("HTTP 503", status=503), True),
        (SpeechUnavailable("HTTP 403", transient=False, status=403), True),
        (SpeechUnavailable("HTTP 422", transient=False, status=422), False),
        (TooLong(duration_s=900, size_bytes=1, max_seconds=600, max_bytes=10), False),
        (AudioError("not audio"), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_the_component_failing(error: Exception, down: bool) -> None:
    assert is_down(error) is down


async def test_outcomes_are_reported_and_recovery_is_announced() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    health = Health(clock)
    recovered: list[str] = []
    health.on_recovered(recovered.append)
    speaker = Speaker()
    tts = monitored(speaker, health, "tts", "synthesize")
    assert health.get("tts") is not None and not health.get("tts").failing  # listed at once

    speaker.error = SpeechUnavailable("HTTP 422: unknown voice", transient=False, status=422)
    with pytest.raises(SpeechUnavailable):
        await tts.synthesize("hi")
    assert not health.get("tts").failing  # a refusal of one request

    speaker.error = SpeechUnavailable("HTTP 503", status=503)
    with pytest.raises(SpeechUnavailable):
        await tts.synthesize("hi")
    state = health.get("tts")
    assert state.failing and state.last_error == "SpeechUnavailable: HTTP 503"
    assert recovered == []

    await clock.advance(1)
    speaker.error = None
    assert await tts.synthesize("hi") == "audio of hi"
    assert not health.get("tts").failing
    assert recovered == ["tts"]
    assert await tts.synthesize("again") == "audio of again"
    assert recovered == ["tts"]  # only a success after a failure

    assert tts.voice == "nova"  # everything else is the dependency's own
    await tts.aclose()
    assert speaker.closed


def test_a_missing_dependency_stays_missing() -> None:
    health = Health(ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    assert monitored(None, health, "stt", "transcribe") is None
    assert health.get("stt") is None
