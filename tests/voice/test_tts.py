"""ElevenLabsSpeaker and OpenAISpeaker through the real SDKs against the fakes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable

import pytest

from tests.providers.elevenlabs_fake import FakeElevenLabs
from tests.providers.openai_audio_fake import FakeOpenAIAudio
from tests.voice.media import inspect_audio
from twin.retry import RetryPolicy
from twin.voice.errors import SpeechUnavailable
from twin.voice.models import VoiceNote
from twin.voice.tts import ElevenLabsSpeaker, OpenAISpeaker, TextToSpeech
from twin.voice.waveform import unpack_levels

TEXT = "Hi! I'm driving right now, I will call you back in about twenty minutes."


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def make_eleven(
    fake_elevenlabs: FakeElevenLabs, sleeps: list[float]
) -> AsyncIterator[Callable[..., ElevenLabsSpeaker]]:
    made: list[ElevenLabsSpeaker] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def factory(**overrides: object) -> ElevenLabsSpeaker:
        kwargs: dict[str, object] = {
            "api_key": "xi-test",
            "voice_id": "owner-clone",
            "base_url": fake_elevenlabs.base_url,
            "model": "eleven_multilingual_v2",
            "stability": 0.35,
            "similarity_boost": 0.9,
            "style": 0.2,
            "timeout": 5.0,
            "retry": RetryPolicy(max_retries=2),
            "sleep": record_sleep,
            "rng": random.Random(1),
        }
        kwargs.update(overrides)
        speaker = ElevenLabsSpeaker(**kwargs)  # type: ignore[arg-type]
        made.append(speaker)
        return speaker

    yield factory
    for speaker in made:
        await speaker.aclose()


@pytest.fixture
async def make_openai(
    fake_openai_audio: FakeOpenAIAudio, sleeps: list[float]
) -> AsyncIterator[Callable[..., OpenAISpeaker]]:
    made: list[OpenAISpeaker] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def factory(**overrides: object) -> OpenAISpeaker:
        kwargs: dict[str, object] = {
            "api_key": "sk-test",
            "base_url": f"{fake_openai_audio.base_url}/v1",
            "voice": "verse",
            "model": "gpt-4o-mini-tts",
            "timeout": 5.0,
            "retry": RetryPolicy(max_retries=2),
            "sleep": record_sleep,
            "rng": random.Random(1),
        }
        kwargs.update(overrides)
        speaker = OpenAISpeaker(**kwargs)  # type: ignore[arg-type]
        made.append(speaker)
        return speaker

    yield factory
    for speaker in made:
        await speaker.aclose()


def assert_telegram_voice_note(note: VoiceNote, synthesized_s: float) -> None:
    decoded = inspect_audio(note.ogg)
    assert (decoded.container, decoded.codec) == ("ogg", "opus")
    assert decoded.channels == 1
    assert decoded.sample_rate == 48_000
    assert decoded.duration_s == pytest.approx(synthesized_s, rel=0.10)
    assert note.duration_s == pytest.approx(decoded.duration_s, abs=0.03)
    levels = unpack_levels(note.waveform)
    assert len(note.waveform) == 63
    assert len(levels) == 100
    assert min(levels) > 0  # the tone is audible from start to end


async def test_elevenlabs_voice_note(
    fake_elevenlabs: FakeElevenLabs, make_eleven: Callable[..., ElevenLabsSpeaker]
) -> None:
    fake_elevenlabs.api_key = "xi-test"
    fake_elevenlabs.voices = {"owner-clone"}
    speaker = make_eleven()
    assert isinstance(speaker, TextToSpeech)

    note = await speaker.synthesize(TEXT)

    (call,) = fake_elevenlabs.syntheses
    assert_telegram_voice_note(note, call.duration_s)
    assert call.voice_id == "owner-clone"
    assert call.text == TEXT
    assert call.model_id == "eleven_multilingual_v2"
    assert call.output_format == "mp3_44100_128"
    assert call.voice_settings is not None
    assert call.voice_settings["stability"] == pytest.approx(0.35)
    assert call.voice_settings["similarity_boost"] == pytest.approx(0.9)
    assert call.voice_settings["style"] == pytest.approx(0.2)


async def test_elevenlabs_other_mp3_rate(
    fake_elevenlabs: FakeElevenLabs, make_eleven: Callable[..., ElevenLabsSpeaker]
) -> None:
    note = await make_eleven(output_format="mp3_22050_32").synthesize("short one")
    (call,) = fake_elevenlabs.syntheses
    assert call.output_format == "mp3_22050_32"
    assert_telegram_voice_note(note, call.duration_s)


@pytest.mark.parametrize("response_format", ["mp3", "opus"])
async def test_openai_voice_note(
    fake_openai_audio: FakeOpenAIAudio,
    make_openai: Callable[..., OpenAISpeaker],
    response_format: str,
) -> None:
    speaker = make_openai(response_format=response_format, instructions="warm, unhurried")

    note = await speaker.synthesize(TEXT)

    (call,) = fake_openai_audio.speeches
    assert_telegram_voice_note(note, call.duration_s)
    assert (call.model, call.voice, call.response_format) == (
        "gpt-4o-mini-tts",
        "verse",
        response_format,
    )
    assert call.text == TEXT
    assert call.instructions == "warm, unhurried"


async def test_openai_without_instructions_does_not_send_them(
    fake_openai_audio: FakeOpenAIAudio, make_openai: Callable[..., OpenAISpeaker]
) -> None:
    await make_openai(model="tts-1").synthesize("hello")
    assert fake_openai_audio.speeches[0].instructions is None
    assert "instructions" not in fake_openai_audio.requests[0].json


async def test_longer_text_gives_a_longer_voice_note(
    make_openai: Callable[..., OpenAISpeaker],
) -> None:
    speaker = make_openai()
    short = await speaker.synthesize("See you soon.")
    long = await speaker.synthesize(TEXT * 2)
    assert long.duration_s > 2 * short.duration_s


async def test_elevenlabs_429_retry_after_then_success(
    fake_elevenlabs: FakeElevenLabs,
    make_eleven: Callable[..., ElevenLabsSpeaker],
    sleeps: list[float],
) -> None:
    fake_elevenlabs.fail_next(status=429, retry_after=4)
    note = await make_eleven().synthesize(TEXT)
    assert sleeps == [4.0]
    assert len(fake_elevenlabs.requests) == 2
    assert note.duration_s > 0


async def test_elevenlabs_outage_becomes_speech_unavailable(
    fake_elevenlabs: FakeElevenLabs,
    make_eleven: Callable[..., ElevenLabsSpeaker],
    sleeps: list[float],
) -> None:
    fake_elevenlabs.fail_next(times=5, status=500)
    with pytest.raises(SpeechUnavailable) as info:
        await make_eleven().synthesize(TEXT)
    assert (info.value.status, info.value.transient) == (500, True)
    assert len(sleeps) == 2
    assert len(fake_elevenlabs.requests) == 3
    assert fake_elevenlabs.syntheses == []


async def test_elevenlabs_unknown_voice_is_not_retried(
    fake_elevenlabs: FakeElevenLabs,
    make_eleven: Callable[..., ElevenLabsSpeaker],
    sleeps: list[float],
) -> None:
    fake_elevenlabs.voices = {"someone-else"}
    with pytest.raises(SpeechUnavailable) as info:
        await make_eleven().synthesize(TEXT)
    assert (info.value.status, info.value.transient) == (404, False)
    assert sleeps == []


async def test_elevenlabs_hang_times_out_then_retries(
    fake_elevenlabs: FakeElevenLabs,
    make_eleven: Callable[..., ElevenLabsSpeaker],
    sleeps: list[float],
) -> None:
    fake_elevenlabs.fail_next(hang=True)
    note = await make_eleven(timeout=0.3).synthesize("hello")
    assert len(sleeps) == 1
    assert note.duration_s > 0


async def test_openai_outage_becomes_speech_unavailable(
    fake_openai_audio: FakeOpenAIAudio,
    make_openai: Callable[..., OpenAISpeaker],
    sleeps: list[float],
) -> None:
    fake_openai_audio.fail_next(times=5, status=502)
    with pytest.raises(SpeechUnavailable) as info:
        await make_openai().synthesize(TEXT)
    assert info.value.status == 502
    assert len(sleeps) == 2
    assert fake_openai_audio.speeches == []


async def test_provider_returning_non_audio_is_speech_unavailable(
    fake_elevenlabs: FakeElevenLabs, make_eleven: Callable[..., ElevenLabsSpeaker]
) -> None:
    # a 200 whose body is JSON, not audio (a misconfigured proxy, say)
    fake_elevenlabs.fail_next(status=200, body={"status": "ok"})
    with pytest.raises(SpeechUnavailable) as info:
        await make_eleven().synthesize(TEXT)
    assert info.value.transient is False
    assert "undecodable" in str(info.value)


async def test_empty_text_is_a_caller_error(
    fake_elevenlabs: FakeElevenLabs, make_eleven: Callable[..., ElevenLabsSpeaker]
) -> None:
    with pytest.raises(ValueError):
        await make_eleven().synthesize("   ")
    assert fake_elevenlabs.requests == []


async def test_a_twin_voice_replaces_the_configured_one(
    fake_elevenlabs: FakeElevenLabs,
    fake_openai_audio: FakeOpenAIAudio,
    make_eleven: Callable[..., ElevenLabsSpeaker],
    make_openai: Callable[..., OpenAISpeaker],
) -> None:
    await make_eleven().synthesize("hello", voice_id="sales-clone")
    await make_eleven().synthesize("hello", voice_id=None)
    assert [call.voice_id for call in fake_elevenlabs.syntheses] == ["sales-clone", "owner-clone"]
    await make_openai().synthesize("hello", voice_id="nova")
    assert fake_openai_audio.speeches[-1].voice == "nova"
