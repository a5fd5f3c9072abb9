"""Fake ElevenLabs text-to-speech with REAL audio, for the unmodified `elevenlabs` SDK.

The SDK (AsyncElevenLabs(base_url=…).text_to_speech.convert) sends
`POST {base_url}/v1/text-to-speech/{voice_id}?output_format=mp3_44100_128` with header
`xi-api-key` and JSON `{"text", "model_id", "voice_settings": {...}}`, and streams the body back.
This fake answers with a real MP3 tone (PyAV) lasting `seconds_per_char` × len(text), clamped,
at the sample rate named in output_format, and records what it was asked (voice settings incl.).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.providers.base import FakeProviderServer
from twin.voice.audio import make_tone

_MP3_FORMAT = re.compile(r"^mp3_(\d{4,5})_(\d{2,3})$")


@dataclass(frozen=True)
class Synthesis:
    voice_id: str
    text: str
    model_id: str | None
    output_format: str
    voice_settings: dict[str, Any] | None
    api_key: str
    duration_s: float
    size: int


class FakeElevenLabs(FakeProviderServer):
    def __init__(self) -> None:
        super().__init__()
        self.api_key: str | None = None  # when set, xi-api-key must equal it
        self.voices: set[str] | None = None  # when set, other voice ids get 404
        self.seconds_per_char = 0.06
        self.min_speech_s = 0.5
        self.max_speech_s = 20.0
        self.syntheses: list[Synthesis] = []

    def speech_seconds(self, text: str) -> float:
        return min(self.max_speech_s, max(self.min_speech_s, len(text) * self.seconds_per_char))

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/text-to-speech/{voice_id}", self._convert)]

    async def _convert(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        key = request.headers.get("xi-api-key", "")
        if not key or (self.api_key is not None and key != self.api_key):
            return web.json_response(
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, status=401
            )
        voice_id = request.match_info["voice_id"]
        if self.voices is not None and voice_id not in self.voices:
            return web.json_response(
                {"detail": {"status": "voice_not_found", "message": f"no voice {voice_id}"}},
                status=404,
            )
        output_format = request.query.get("output_format", "mp3_44100_128")
        match = _MP3_FORMAT.match(output_format)
        if match is None:
            return web.json_response(
                {"detail": {"status": "invalid_output_format", "message": output_format}},
                status=422,
            )
        body = rec.json if isinstance(rec.json, dict) else {}
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return web.json_response(
                {"detail": [{"loc": ["body", "text"], "msg": "field required"}]}, status=422
            )
        seconds = self.speech_seconds(text)
        audio = await asyncio.to_thread(
            make_tone, seconds, 330.0, "mp3", sample_rate=int(match.group(1))
        )
        self.syntheses.append(
            Synthesis(
                voice_id=voice_id,
                text=text,
                model_id=body.get("model_id"),
                output_format=output_format,
                voice_settings=body.get("voice_settings"),
                api_key=key,
                duration_s=seconds,
                size=len(audio),
            )
        )
        return web.Response(body=audio, content_type="audio/mpeg")
