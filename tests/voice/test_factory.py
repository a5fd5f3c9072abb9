"""build_stt / build_tts: [stt] / [tts] settings → adapters that work against the fakes."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tests.providers.elevenlabs_fake import FakeElevenLabs
from tests.providers.openai_audio_fake import FakeOpenAIAudio
from twin.config import STTSettings, TTSSettings
from twin.errors import ConfigError
from twin.voice import audio
from twin.voice.errors import SpeechUnavailable
from twin.voice.factory import build_stt, build_tts, openai_tts_model
from twin.voice.stt import OpenAITranscriber
from twin.voice.voices import Voices


def test_provider_none_builds_nothing() -> None:
    assert build_stt(STTSettings(provider="none")) is None
    assert build_tts(TTSSettings(provider="none")) is None


def test_missing_key_is_a_config_error_unless_self_hosted() -> None:
    with pytest.raises(ConfigError, match=r"stt\.api_key"):
        build_stt(STTSettings(provider="openai"))
    with pytest.raises(ConfigError, match=r"tts\.api_key"):
        build_tts(TTSSettings(provider="openai"))
    with pytest.raises(ConfigError, match=r"tts\.voice_id"):
        build_tts(TTSSettings(provider="elevenlabs", api_key=SecretStr("k")))


async def test_stt_from_settings(fake_openai_audio: FakeOpenAIAudio) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    settings = STTSettings(
        provider="openai",
        model="whisper-1",
        base_url=f"{fake_openai_audio.base_url}/v1",  # self-hosted: no key needed
        language="uk",
        price_per_minute=0.01,
        max_retries=1,
        max_seconds=10,
    )
    stt = build_stt(settings, sleep=sleep)
    assert isinstance(stt, OpenAITranscriber)
    try:
        fake_openai_audio.fail_next(times=2, status=500)
        with pytest.raises(SpeechUnavailable):
            await stt.transcribe(audio.make_tone(1.0))
        assert len(sleeps) == 1  # max_retries=1

        result = await stt.transcribe(audio.make_tone(6.0))
        assert result.cost_usd == pytest.approx(0.001)
        assert fake_openai_audio.uploads[-1].model == "whisper-1"
        assert fake_openai_audio.uploads[-1].language == "uk"
    finally:
        await stt.aclose()


async def test_elevenlabs_from_settings(fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.api_key = "xi-secret"
    settings = TTSSettings(
        provider="elevenlabs",
        voice_id="v1",
        api_key=SecretStr("xi-secret"),
        base_url=fake_elevenlabs.base_url,
        stability=0.1,
        similarity_boost=0.2,
        style=0.3,
    )
    tts = build_tts(settings)
    assert isinstance(tts, Voices) and tts.providers == ("elevenlabs",)
    try:
        note = await tts.synthesize("hello there")
    finally:
        await tts.aclose()
    assert note.duration_s > 0
    (call,) = fake_elevenlabs.syntheses
    assert call.api_key == "xi-secret"
    assert call.voice_settings is not None
    assert [call.voice_settings[k] for k in ("stability", "similarity_boost", "style")] == [
        pytest.approx(0.1),
        pytest.approx(0.2),
        pytest.approx(0.3),
    ]


async def test_openai_tts_from_settings(fake_openai_audio: FakeOpenAIAudio) -> None:
    settings = TTSSettings(
        provider="openai",
        api_key=SecretStr("sk-x"),
        base_url=f"{fake_openai_audio.base_url}/v1",
        openai_voice="nova",
        model="tts-1",
    )
    tts = build_tts(settings)
    assert isinstance(tts, Voices) and tts.providers == ("openai",)
    try:
        await tts.synthesize("hello there")
    finally:
        await tts.aclose()
    (call,) = fake_openai_audio.speeches
    assert (call.model, call.voice, call.response_format) == ("tts-1", "nova", "opus")


def test_openai_tts_ignores_the_default_elevenlabs_model() -> None:
    assert openai_tts_model("eleven_multilingual_v2") == "gpt-4o-mini-tts"
    assert openai_tts_model("") == "gpt-4o-mini-tts"
    assert openai_tts_model("tts-1-hd") == "tts-1-hd"
