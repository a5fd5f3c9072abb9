"""Build the speech adapters from `[stt]` / `[tts]` settings (the only place that reads them).

`build_stt` / `build_tts` return None when the provider is "none". A missing api_key is a
ConfigError unless `base_url` points at a self-hosted compatible server (which usually needs no
key). The caller owns the result and must `await adapter.aclose()` on shutdown.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from twin.config import STTSettings, TTSSettings
from twin.errors import ConfigError
from twin.retry import RetryPolicy, Sleep
from twin.voice.needs import key_problem, tts_problems
from twin.voice.voices import Voices

if TYPE_CHECKING:  # the speech SDKs (and PyAV) are imported only when configured
    from twin.voice.stt import SpeechToText
    from twin.voice.tts import TextToSpeech

_KEYLESS = "unused"  # self-hosted OpenAI-compatible servers ignore the key


def _api_key(section: str, settings: STTSettings | TTSSettings) -> str:
    problem = key_problem(section, settings)
    if problem:
        raise ConfigError([problem])
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    return _KEYLESS


def _policy(settings: STTSettings | TTSSettings) -> RetryPolicy:
    # backoff 0.5 s · 2**k (jittered, ≤ 20 s); a Retry-After over 60 s ends the attempt at once
    return RetryPolicy(max_retries=settings.max_retries)


OPENAI_TTS_MODEL = "gpt-4o-mini-tts"


def openai_tts_model(model: str) -> str:
    """[tts] model is shared by both providers and defaults to an ElevenLabs model id; an
    ElevenLabs id (or an empty one) with provider = "openai" means OpenAI's default model."""
    return OPENAI_TTS_MODEL if not model or model.startswith("eleven_") else model


def build_stt(
    settings: STTSettings,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> SpeechToText | None:
    if settings.provider == "none":
        return None
    if settings.provider == "openai":
        from twin.voice.stt import OpenAITranscriber

        return OpenAITranscriber(
            api_key=_api_key("stt", settings),
            model=settings.model,
            base_url=settings.base_url or None,
            timeout=settings.timeout,
            max_seconds=settings.max_seconds,
            max_bytes=settings.max_bytes,
            price_per_minute=settings.price_per_minute,
            default_language=settings.language,
            retry=_policy(settings),
            sleep=sleep,
            rng=rng,
        )
    raise ConfigError([f"stt.provider: unknown provider {settings.provider!r}"])


def build_tts(
    settings: TTSSettings,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> Voices | None:
    """A speaker for [tts] provider and for each further provider with an account ([tts.openai],
    [tts.elevenlabs]), behind one TextToSpeech (twin.voice.voices); None without any."""
    problems = tts_problems(settings)
    if problems:
        raise ConfigError(problems)
    names = settings.providers()
    if not names:
        return None
    speakers = {
        name: _speaker(settings.of(name), sleep=sleep, rng=rng, section=_section(settings, name))
        for name in names
    }
    return Voices(speakers, None if settings.provider == "none" else settings.provider)


def _section(settings: TTSSettings, provider: str) -> str:
    return "tts" if provider == settings.provider else f"tts.{provider}"


def _speaker(
    settings: TTSSettings, *, sleep: Sleep, rng: random.Random | None, section: str
) -> TextToSpeech:
    api_key = _api_key(section, settings)
    if settings.provider == "elevenlabs":
        from twin.voice.tts import ElevenLabsSpeaker

        return ElevenLabsSpeaker(
            api_key=api_key,
            voice_id=settings.voice_id or None,
            model=settings.model,
            base_url=settings.base_url or None,
            stability=settings.stability,
            similarity_boost=settings.similarity_boost,
            style=settings.style,
            timeout=settings.timeout,
            retry=_policy(settings),
            sleep=sleep,
            rng=rng,
        )
    if settings.provider == "openai":
        from twin.voice.tts import OpenAISpeaker

        return OpenAISpeaker(
            api_key=api_key,
            voice=settings.openai_voice,
            model=openai_tts_model(settings.model),
            base_url=settings.base_url or None,
            timeout=settings.timeout,
            retry=_policy(settings),
            sleep=sleep,
            rng=rng,
        )
    raise ConfigError([f"tts.provider: unknown provider {settings.provider!r}"])
