"""Fake OpenAI audio endpoints with REAL audio, for the unmodified `openai` SDK.

- POST /v1/audio/transcriptions — decodes the uploaded file with PyAV; answers 400 (like OpenAI)
  when it is not audio, or when `expect_duration` is set and the decoded duration is off by
  more than `duration_tolerance` seconds. Returns `transcript` as json / text / verbose_json.
- POST /v1/audio/speech — returns a real tone (mp3, opus-in-ogg or wav) whose length follows
  the text: `seconds_per_char` × len(input), clamped to [min_speech_s, max_speech_s].

`openai_audio_routes(fake)` returns the route table, so another fake (e.g. the chat-completions
one) can mount these routes on its own app with a `FakeOpenAIAudio()` that is never started.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import av
import av.error
from aiohttp import web

from tests.providers.base import FakeProviderServer
from twin.voice.audio import make_tone

_SPEECH_FORMATS = {
    # response_format: (make_tone fmt, Content-Type)
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("ogg_opus", "audio/ogg"),
    "wav": ("wav", "audio/wav"),
}


@dataclass(frozen=True)
class Upload:
    """One transcription request as the fake understood it."""

    model: str
    language: str | None
    response_format: str
    filename: str
    content_type: str
    size: int
    codec: str
    duration_s: float


@dataclass(frozen=True)
class Speech:
    """One speech request and the audio the fake returned."""

    model: str
    voice: str
    text: str
    response_format: str
    instructions: str | None
    duration_s: float
    size: int


def decoded_duration(data: bytes) -> tuple[str, float]:
    """(codec, seconds) by decoding every sample with PyAV; ValueError if it is not audio."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            codec = stream.codec_context.codec.canonical_name
            rate = stream.sample_rate
    except (av.error.FFmpegError, EOFError, OSError) as exc:
        raise ValueError(str(exc)) from None
    if not samples or not rate:
        raise ValueError("no samples")
    return codec, samples / rate


def _error(status: int, message: str, code: str = "invalid_request_error") -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": code, "param": None, "code": None}}, status=status
    )


class FakeOpenAIAudio(FakeProviderServer):
    def __init__(self) -> None:
        super().__init__()
        # transcriptions
        self.transcript = "hello from the fake"
        self.detected_language = "english"
        self.expect_duration: float | None = None
        self.duration_tolerance = 0.25  # seconds
        self.uploads: list[Upload] = []
        # speech
        self.seconds_per_char = 0.06
        self.min_speech_s = 0.5
        self.max_speech_s = 20.0
        self.speeches: list[Speech] = []
        # auth: when set, requests must carry "Authorization: Bearer <api_key>"
        self.api_key: str | None = None

    def routes(self) -> list[web.RouteDef]:
        return openai_audio_routes(self)

    def speech_seconds(self, text: str) -> float:
        return min(self.max_speech_s, max(self.min_speech_s, len(text) * self.seconds_per_char))

    def check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and request.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        return None


def openai_audio_routes(fake: FakeOpenAIAudio) -> list[web.RouteDef]:
    async def transcriptions(request: web.Request) -> web.Response:
        rec = await fake.record(request)
        if (denied := fake.check_auth(request)) is not None:
            return denied
        form = await request.post()  # cached by aiohttp: same fields record() just read
        field = form.get("file")
        data = rec.form.get("file")
        if not isinstance(data, bytes) or not hasattr(field, "filename"):
            return _error(400, "'file' is a required multipart file field")
        model = str(rec.form.get("model", ""))
        if not model:
            return _error(400, "'model' is required")
        try:
            codec, duration = await asyncio.to_thread(decoded_duration, data)
        except ValueError as exc:
            return _error(400, f"Invalid file format. The audio could not be decoded: {exc}")
        if fake.expect_duration is not None and (
            abs(duration - fake.expect_duration) > fake.duration_tolerance
        ):
            return _error(
                400, f"fake: audio lasts {duration:.3f}s, expected {fake.expect_duration:.3f}s"
            )
        language = rec.form.get("language")
        response_format = str(rec.form.get("response_format", "json"))
        fake.uploads.append(
            Upload(
                model=model,
                language=str(language) if language else None,
                response_format=response_format,
                filename=field.filename,  # type: ignore[union-attr]
                content_type=field.content_type,  # type: ignore[union-attr]
                size=len(data),
                codec=codec,
                duration_s=duration,
            )
        )
        if response_format == "text":
            return web.Response(text=fake.transcript + "\n")
        if response_format == "verbose_json":
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": fake.detected_language,
                    "duration": duration,
                    "text": fake.transcript,
                    "segments": [],
                }
            )
        if response_format != "json":
            return _error(400, f"fake: unsupported response_format {response_format!r}")
        return web.json_response({"text": fake.transcript})

    async def speech(request: web.Request) -> web.Response:
        rec = await fake.record(request)
        if (denied := fake.check_auth(request)) is not None:
            return denied
        body = rec.json if isinstance(rec.json, dict) else {}
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "'input' must be a non-empty string")
        if not body.get("model") or not body.get("voice"):
            return _error(400, "'model' and 'voice' are required")
        response_format = body.get("response_format", "mp3")
        if response_format not in _SPEECH_FORMATS:
            return _error(400, f"fake: unsupported response_format {response_format!r}")
        tone_fmt, content_type = _SPEECH_FORMATS[response_format]
        seconds = fake.speech_seconds(text)
        audio = await asyncio.to_thread(make_tone, seconds, 440.0, tone_fmt)
        fake.speeches.append(
            Speech(
                model=body["model"],
                voice=body["voice"],
                text=text,
                response_format=response_format,
                instructions=body.get("instructions"),
                duration_s=seconds,
                size=len(audio),
            )
        )
        return web.Response(body=audio, content_type=content_type)

    return [
        web.post("/v1/audio/transcriptions", transcriptions),
        web.post("/v1/audio/speech", speech),
    ]
