"""Independent inspection of encoded audio with PyAV (not through twin.voice.audio)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av


@dataclass(frozen=True)
class Decoded:
    container: str
    codec: str
    sample_rate: int
    channels: int
    samples: int

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


def inspect_audio(data: bytes) -> Decoded:
    """Decode every frame and count the samples."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = 0
        channels = 0
        for frame in container.decode(stream):
            samples += frame.samples
            channels = len(frame.layout.channels)
        return Decoded(
            container=container.format.name,
            codec=stream.codec_context.codec.canonical_name,
            sample_rate=stream.sample_rate,
            channels=channels,
            samples=samples,
        )
