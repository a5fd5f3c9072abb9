"""Text to speech: the `TextToSpeech` port and two adapters (official `elevenlabs` and `openai`
SDKs). Both return a Telegram-ready `VoiceNote` (OGG/Opus mono 48 kHz + duration + waveform);
SDK types stop in this module.
"""

from __future__ import annotations

import asyncio
import random
from typing import Literal

import httpx
import openai
from elevenlabs import VoiceSettings
from elevenlabs.client import AsyncElevenLabs

from twin.ports import TextToSpeech
from twin.retry import RetryPolicy, Sleep
from twin.voice import audio
from twin.voice.errors import AudioError, SpeechUnavailable
from twin.voice.models import VoiceNote
from twin.voice.retry import Failure, call_with_retries
from twin.voice.vendor_errors import classify_elevenlabs, classify_openai

__all__ = ["ElevenLabsSpeaker", "OpenAISpeaker", "TextToSpeech", "VoiceNote"]


class _Speaker:
    """Retries `_fetch` (one provider request returning encoded audio), then converts."""

    name = "tts"

    def __init__(
        self,
        *,
        bitrate: int,
        retry: RetryPolicy | None,
        sleep: Sleep,
        rng: random.Random | None,
    ) -> None:
        self.bitrate = bitrate
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def _fetch(self, text: str, voice_id: str | None) -> bytes:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _classify(exc: BaseException) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def synthesize(self, text: str, *, voice_id: str | None = None) -> VoiceNote:
        """`text` spoken in `voice_id` (a twin's voice), else the configured voice."""
        text = text.strip()
        if not text:
            raise ValueError("nothing to synthesize: empty text")
        encoded = await call_with_retries(
            lambda: self._fetch(text, voice_id),
            classify=self._classify,
            policy=self._retry,
            what=self.name,
            sleep=self._sleep,
            rng=self._rng,
        )
        try:
            return await audio.voice_note_async(encoded, bitrate=self.bitrate)
        except AudioError as exc:
            raise SpeechUnavailable(
                f"{self.name}: provider returned undecodable audio ({exc})", transient=False
            ) from exc


class ElevenLabsSpeaker(_Speaker):
    """`text_to_speech.convert` with a cloned voice (`voice_id`), MP3 by default."""

    name = "elevenlabs tts"

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str | None,  # None: every call names its voice (twins' voices)
        model: str = "eleven_multilingual_v2",
        base_url: str | None = None,
        stability: float = 0.5,
        similarity_boost: float = 0.75,
        style: float = 0.0,
        output_format: str = "mp3_44100_128",
        timeout: float = 60.0,
        bitrate: int = audio.VOICE_BITRATE,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(bitrate=bitrate, retry=retry, sleep=sleep, rng=rng)
        self.voice_id = voice_id
        self.model = model
        self.output_format = output_format
        self.voice_settings = VoiceSettings(
            stability=stability, similarity_boost=similarity_boost, style=style
        )
        # Our own httpx client so aclose() can release its connections.
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self._client = AsyncElevenLabs(
            api_key=api_key, base_url=base_url, timeout=timeout, httpx_client=self._http
        )

    _classify = staticmethod(classify_elevenlabs)

    async def _fetch(self, text: str, voice_id: str | None) -> bytes:
        voice = voice_id or self.voice_id
        if not voice:
            raise SpeechUnavailable(
                "elevenlabs tts: no voice (the twin's voice names none)", transient=False
            )
        chunks: list[bytes] = []
        async for chunk in self._client.text_to_speech.convert(
            voice,
            text=text,
            model_id=self.model,
            output_format=self.output_format,  # type: ignore[arg-type]
            voice_settings=self.voice_settings,
            request_options={"max_retries": 0},
        ):
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._http.aclose()


class OpenAISpeaker(_Speaker):
    """`audio.speech.create` (gpt-4o-mini-tts, tts-1, …) on OpenAI or a compatible server."""

    name = "openai tts"

    def __init__(
        self,
        *,
        api_key: str,
        voice: str = "alloy",
        model: str = "gpt-4o-mini-tts",
        base_url: str | None = None,
        response_format: Literal["mp3", "opus"] = "opus",
        instructions: str = "",
        timeout: float = 60.0,
        bitrate: int = audio.VOICE_BITRATE,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(bitrate=bitrate, retry=retry, sleep=sleep, rng=rng)
        self.voice = voice
        self.model = model
        self.response_format = response_format
        self.instructions = instructions
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    _classify = staticmethod(classify_openai)

    async def _fetch(self, text: str, voice_id: str | None) -> bytes:
        response = await self._client.audio.speech.create(
            model=self.model,
            voice=voice_id or self.voice,
            input=text,
            response_format=self.response_format,
            instructions=self.instructions or openai.omit,
        )
        return response.content

    async def aclose(self) -> None:
        await self._client.close()
