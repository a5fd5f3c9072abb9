"""Value types of the voice package (stdlib only; no PyAV or SDK types escape this package)."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What `audio.probe` found; `container` is PyAV's demuxer name ("ogg", "mp3", "wav", …)."""

    duration_s: float
    codec: str
    sample_rate: int
    channels: int
    container: str = ""


class Pcm(NamedTuple):
    """Mono signed 16-bit PCM: `samples` is an `array('h')`; unpacks as (samples, sample_rate)."""

    samples: array
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcribed voice note. `language` is the hint that was sent (None = auto-detected)."""

    text: str
    language: str | None
    duration_s: float
    cost_usd: float


@dataclass(frozen=True, slots=True)
class VoiceNote:
    """A Telegram-ready voice note: OGG/Opus mono 48 kHz plus the attribute values it needs.

    `waveform` is the 63-byte packed 5-bit waveform of DocumentAttributeAudio (see
    `twin.voice.waveform`); `duration_s` is exact (encoded samples / 48000).
    """

    ogg: bytes
    duration_s: float
    waveform: bytes

    @property
    def telegram_duration(self) -> int:
        """Whole seconds for DocumentAttributeAudio(duration=…): rounded up, at least 1."""
        return max(1, math.ceil(self.duration_s - 1e-6))

    mime_type = "audio/ogg"
