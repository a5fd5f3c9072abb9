"""A twin's voice names its TTS provider and voice id (issue 14, item 1): build_tts builds a
speaker for [tts] provider and for each [tts.<provider>] account, and every synthesis goes to
the provider the twin names, through the real SDKs against the fakes."""

from __future__ import annotations

import logging

import pytest

from tests.providers.elevenlabs_fake import FakeElevenLabs
from tests.providers.openai_audio_fake import FakeOpenAIAudio
from twin.config import load_settings
from twin.voice.errors import SpeechUnavailable
from twin.voice.factory import build_tts

SAY = "I'll call you back in twenty minutes."


def tts_settings(openai_url: str, eleven_url: str | None, **tts: object):
    section: dict[str, object] = {
        "provider": "openai",
        "api_key": "sk-tts",
        "base_url": openai_url,
        "openai_voice": "verse",
        "max_retries": 0,
        **tts,
    }
    if eleven_url is not None:
        section["elevenlabs"] = {"api_key": "xi-second", "base_url": eleven_url}
    return load_settings(None, tts=section).tts


async def test_each_twin_speaks_through_the_provider_its_voice_names(
    fake_openai_audio: FakeOpenAIAudio, fake_elevenlabs: FakeElevenLabs
) -> None:
    fake_elevenlabs.api_key = "xi-second"  # the [tts.elevenlabs] account's key
    settings = tts_settings(f"{fake_openai_audio.base_url}/v1", fake_elevenlabs.base_url)
    assert settings.providers() == ("openai", "elevenlabs")
    voices = build_tts(settings)
    assert voices is not None
    try:
        await voices.synthesize(SAY)  # a twin without a voice: [tts]'s own
        await voices.synthesize(SAY, voice_id="nova")  # [tts] provider, the twin's voice
        await voices.synthesize(SAY, voice_id="v-42", provider="elevenlabs")
        await voices.synthesize(SAY, voice_id="shimmer", provider="openai")
    finally:
        await voices.aclose()
    assert [s.voice for s in fake_openai_audio.speeches] == ["verse", "nova", "shimmer"]
    assert [(s.voice_id, s.api_key) for s in fake_elevenlabs.syntheses] == [("v-42", "xi-second")]
    # [tts] model is OpenAI's here: the ElevenLabs account speaks with ElevenLabs' default
    assert fake_elevenlabs.syntheses[0].model_id == "eleven_multilingual_v2"


async def test_a_voice_of_a_provider_no_longer_configured_speaks_in_the_default_voice(
    fake_openai_audio: FakeOpenAIAudio, caplog: pytest.LogCaptureFixture
) -> None:
    voices = build_tts(tts_settings(f"{fake_openai_audio.base_url}/v1", None))
    assert voices is not None and voices.providers == ("openai",)
    try:
        with caplog.at_level(logging.WARNING, logger="twin.voice"):
            await voices.synthesize(SAY, voice_id="v-42", provider="elevenlabs")
            await voices.synthesize(SAY, voice_id="v-42", provider="elevenlabs")
    finally:
        await voices.aclose()
    # its ElevenLabs voice id means nothing to OpenAI: [tts]'s voice, said once in the log
    assert [s.voice for s in fake_openai_audio.speeches] == ["verse", "verse"]
    warned = [r for r in caplog.records if "not configured" in r.getMessage()]
    assert len(warned) == 1


async def test_only_a_second_account_speaks_only_for_twins_that_name_it(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    settings = load_settings(
        None,
        tts={
            "provider": "none",
            "max_retries": 0,
            "elevenlabs": {"api_key": "xi-second", "base_url": fake_elevenlabs.base_url},
        },
    ).tts
    voices = build_tts(settings)
    assert voices is not None
    try:
        with pytest.raises(SpeechUnavailable, match="not configured"):
            await voices.synthesize(SAY)  # no [tts] provider: a twin without a voice is mute
        with pytest.raises(SpeechUnavailable, match="no voice"):
            await voices.synthesize(SAY, provider="elevenlabs")  # names no voice id
        await voices.synthesize(SAY, voice_id="v-7", provider="elevenlabs")
    finally:
        await voices.aclose()
    assert [s.voice_id for s in fake_elevenlabs.syntheses] == ["v-7"]


def test_a_second_account_without_a_key_is_not_a_provider() -> None:
    settings = load_settings(None, tts={"provider": "openai", "api_key": "sk"}).tts
    assert settings.providers() == ("openai",)
    assert build_tts(load_settings(None, tts={"provider": "none"}).tts) is None
