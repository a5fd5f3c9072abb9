"""Speech to text: the `SpeechToText` port and its OpenAI adapter (official `openai` SDK).

OpenAI SDK types stop in this module: callers get `Transcript` or one of twin.voice.errors.
"""

from __future__ import annotations

import asyncio
import random

import openai

from twin.domain.language import language_hint
from twin.ports import SpeechToText
from twin.retry import RetryPolicy, Sleep
from twin.voice import audio
from twin.voice.errors import SpeechUnavailable, TooLong
from twin.voice.models import AudioInfo, Transcript
from twin.voice.retry import call_with_retries
from twin.voice.vendor_errors import classify_openai

__all__ = [
    "OpenAITranscriber",
    "SpeechToText",
    "Transcript",
    "language_hint",
    "transcription_cost",
]


def transcription_cost(duration_s: float, price_per_minute: float) -> float:
    """USD for `duration_s` of audio at `price_per_minute` (pro rata, per second)."""
    return max(0.0, duration_s) / 60.0 * price_per_minute


# container (PyAV demuxer name) → (file name, MIME type) the transcription endpoint accepts
_UPLOAD_NAMES: dict[str, tuple[str, str]] = {
    "ogg": ("voice.ogg", "audio/ogg"),
    "mp3": ("voice.mp3", "audio/mpeg"),
    "wav": ("voice.wav", "audio/wav"),
    "flac": ("voice.flac", "audio/flac"),
    "mov,mp4,m4a,3gp,3g2,mj2": ("voice.m4a", "audio/mp4"),
    "matroska,webm": ("voice.webm", "audio/webm"),
}


class OpenAITranscriber:
    """`audio.transcriptions.create` on OpenAI or any compatible server (`base_url`).

    Limits are checked locally before any upload: more than `max_bytes`, or longer than
    `max_seconds` (from the container, see `audio.probe`) → `TooLong`. Formats the endpoint does
    not accept are converted to OGG/Opus first. Cost = minutes × `price_per_minute`.
    """

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "whisper-1",
        base_url: str | None = None,
        timeout: float = 60.0,
        max_seconds: float = 300.0,
        max_bytes: int = 20 * 1024 * 1024,
        price_per_minute: float = 0.006,
        default_language: str | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.model = model
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self.price_per_minute = price_per_minute
        self.default_language = default_language
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    async def aclose(self) -> None:
        await self._client.close()

    def check_limits(self, size_bytes: int, info: AudioInfo | None) -> None:
        """Raise TooLong when the audio may not be sent (pure; used before any upload)."""
        duration = info.duration_s if info is not None else None
        if size_bytes > self.max_bytes or (duration is not None and duration > self.max_seconds):
            raise TooLong(
                duration_s=duration,
                size_bytes=size_bytes,
                max_seconds=self.max_seconds,
                max_bytes=self.max_bytes,
            )

    async def transcribe(self, data: bytes, *, language: str | None = None) -> Transcript:
        self.check_limits(len(data), None)
        info = await audio.probe_async(data)
        self.check_limits(len(data), info)
        upload = _UPLOAD_NAMES.get(info.container)
        if upload is None:  # e.g. AMR, ADTS AAC: convert to what Telegram itself uses
            data = await audio.to_ogg_opus_async(data)
            upload = _UPLOAD_NAMES["ogg"]
        hint = language_hint(language or self.default_language)
        filename, mime = upload

        async def attempt() -> str:
            result = await self._client.audio.transcriptions.create(
                model=self.model,
                file=(filename, data, mime),
                language=hint if hint else openai.omit,
                response_format="json",
            )
            text = result if isinstance(result, str) else getattr(result, "text", None)
            if not isinstance(text, str):
                raise SpeechUnavailable(f"{self.model}: response without text", transient=False)
            return text

        text = await call_with_retries(
            attempt,
            classify=classify_openai,
            policy=self._retry,
            what=f"transcription ({self.model})",
            sleep=self._sleep,
            rng=self._rng,
        )
        return Transcript(
            text=text.strip(),
            language=hint,
            duration_s=info.duration_s,
            cost_usd=transcription_cost(info.duration_s, self.price_per_minute),
        )
