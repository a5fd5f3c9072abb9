"""Test media made on the fly: an OGG/Opus voice note encoded with PyAV (libopus).

Why: a voice note must be a real OGG/Opus stream (what Telegram clients record), but the test
suite ships no binary fixtures and fetches nothing, so it synthesises a short sine tone.
"""

from __future__ import annotations

import array
import io
import math
import sys

import av

SAMPLE_RATE = 48000


def make_voice_note(seconds: float = 1.5, frequency: float = 440.0) -> bytes:
    """Mono 48 kHz sine tone as OGG/Opus bytes (about 1-2 KiB per second)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE)
        stream.layout = "mono"
        stream.bit_rate = 24000
        total = int(seconds * SAMPLE_RATE)
        frame_size = 960  # 20 ms
        for start in range(0, total, frame_size):
            n = min(frame_size, total - start)
            samples = array.array("h", (
                int(9830 * math.sin(2 * math.pi * frequency * (start + i) / SAMPLE_RATE))
                for i in range(n)
            ))
            if sys.byteorder != "little":
                samples.byteswap()
            frame = av.AudioFrame(format="s16", layout="mono", samples=n)
            frame.planes[0].update(samples.tobytes())
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def waveform(levels: list[int]) -> bytes:
    """Telegram's 5-bit packed voice waveform (as DocumentAttributeAudio.waveform)."""
    bits = 0
    nbits = 0
    out = bytearray()
    for level in levels:
        bits |= (max(0, min(31, level)) & 31) << nbits
        nbits += 5
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    return bytes(out)
