"""In-process audio with PyAV (FFmpeg's libraries; no ffmpeg binary needed).

Everything here is synchronous and CPU-bound. From the event loop use the `*_async` wrappers,
which run the work in a worker thread (`asyncio.to_thread`; PyAV releases the GIL while FFmpeg
decodes/encodes), so the loop is never blocked.

Telegram voice notes are OGG/Opus, mono, 48 kHz; `voice_note()` produces exactly that together
with the exact duration and the packed waveform, from one decode of any input PyAV can read
(MP3, WAV, OGG/Opus or Vorbis, M4A/AAC, WebM, FLAC…). Undecodable input raises `AudioError`.
"""

from __future__ import annotations

import asyncio
import io
import math
from array import array
from collections.abc import Iterator
from fractions import Fraction
from typing import Literal

import av
import av.error
from av.audio.frame import AudioFrame

from twin.voice.errors import AudioError
from twin.voice.models import AudioInfo, Pcm, VoiceNote
from twin.voice.waveform import levels_from_pcm, pack_levels

__all__ = [
    "VOICE_BITRATE",
    "VOICE_SAMPLE_RATE",
    "AudioInfo",
    "Pcm",
    "ToneFormat",
    "VoiceNote",
    "decode_pcm",
    "decode_pcm_async",
    "encode_pcm",
    "make_tone",
    "probe",
    "probe_async",
    "to_ogg_opus",
    "to_ogg_opus_async",
    "voice_note",
    "voice_note_async",
    "waveform",
    "waveform_async",
    "waveform_levels",
]

VOICE_SAMPLE_RATE = 48_000  # Opus always runs at 48 kHz; Telegram voice notes are 48 kHz mono
VOICE_BITRATE = 32_000  # what Telegram Desktop records with
_OPUS_FRAME = 960  # 20 ms at 48 kHz: libopus needs fixed-size frames (a shorter last one is fine)

ToneFormat = Literal["ogg_opus", "mp3", "wav", "m4a"]

# PyAV/FFmpeg failures while reading untrusted bytes. av.error.FFmpegError covers
# InvalidDataError, EOFError, …; the rest are what PyAV raises for broken streams.
_DECODE_ERRORS = (av.error.FFmpegError, ValueError, EOFError, OSError, IndexError)


# -- reading ----------------------------------------------------------------------------------
def _open(data: bytes) -> av.container.InputContainer:
    if not data:
        raise AudioError("empty audio")
    try:
        return av.open(io.BytesIO(data), mode="r")
    except _DECODE_ERRORS as exc:
        raise AudioError(f"not decodable audio: {exc}") from None


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise AudioError(f"no audio stream in {container.format.name} input")
    return container.streams.audio[0]


def _frames(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[AudioFrame]:
    """Decoded frames; packets that fail to decode are skipped (as ffmpeg does), but a stream
    whose demuxing fails, or that yields no samples at all, is an AudioError."""
    produced = False
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except _DECODE_ERRORS:
                continue
            for frame in frames:
                if frame.samples:
                    produced = True
                    yield frame
    except _DECODE_ERRORS as exc:
        if not produced:
            raise AudioError(f"not decodable audio: {exc}") from None
    if not produced:
        raise AudioError("audio stream contains no samples")


def _plane_bytes(frame: AudioFrame, bytes_per_sample: int = 2) -> bytes:
    # A plane's buffer is padded/aligned beyond the samples it holds: cut it to size.
    return bytes(frame.planes[0])[: frame.samples * bytes_per_sample]


def _mono_s16(data: bytes, rate: int | None, frame_size: int | None = None) -> Iterator[AudioFrame]:
    """Decode `data` and yield frames resampled to mono s16 at `rate` (None = source rate)."""
    with _open(data) as container:
        stream = _audio_stream(container)
        resampler = av.AudioResampler(
            format="s16",
            layout="mono",
            rate=rate or stream.sample_rate or None,
            frame_size=frame_size,
        )
        for frame in _frames(container, stream):
            frame.pts = None  # we re-time the output ourselves; odd input pts must not matter
            yield from resampler.resample(frame)
        yield from resampler.resample(None)


def probe(data: bytes) -> AudioInfo:
    """Container/codec facts and duration without decoding (falls back to demuxing/decoding
    when the container does not state a duration)."""
    with _open(data) as container:
        stream = _audio_stream(container)
        duration = None
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
            if stream.codec_context.name in ("opus", "libopus"):
                # ogg/opus durations include the encoder pre-skip (≈ 6.5 ms): drop it
                duration = max(0.0, duration - stream.codec_context.delay / VOICE_SAMPLE_RATE)
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        if duration is None:
            try:
                ticks = sum(p.duration or 0 for p in container.demux(stream))
            except _DECODE_ERRORS as exc:
                raise AudioError(f"not decodable audio: {exc}") from None
            if ticks and stream.time_base:
                duration = float(ticks * stream.time_base)
        if duration is None:
            samples = sum(f.samples for f in _frames(container, stream))
            duration = samples / (stream.sample_rate or 1)
        return AudioInfo(
            duration_s=duration,
            codec=stream.codec_context.codec.canonical_name,
            sample_rate=stream.sample_rate or 0,
            channels=stream.channels or 0,
            container=container.format.name,
        )


def decode_pcm(data: bytes, *, rate: int | None = None) -> Pcm:
    """Decode to mono signed 16-bit PCM (`array('h')`) at the source rate, or at `rate`."""
    samples = array("h")
    out_rate = 0
    for frame in _mono_s16(data, rate):
        out_rate = frame.sample_rate
        samples.frombytes(_plane_bytes(frame))
    return Pcm(samples, out_rate)


# -- encoding -----------------------------------------------------------------------------------
def _encode_opus(data: bytes, bitrate: int, keep_pcm: bool) -> tuple[bytes, int, array]:
    out = io.BytesIO()
    pcm = array("h")
    total = 0
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream(
            "libopus", rate=VOICE_SAMPLE_RATE, layout="mono", options={"application": "voip"}
        )
        stream.codec_context.bit_rate = bitrate
        time_base = Fraction(1, VOICE_SAMPLE_RATE)
        for frame in _mono_s16(data, VOICE_SAMPLE_RATE, _OPUS_FRAME):
            if keep_pcm:
                pcm.frombytes(_plane_bytes(frame))
            frame.pts = total
            frame.time_base = time_base
            total += frame.samples
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue(), total, pcm


def to_ogg_opus(data: bytes, *, bitrate: int = VOICE_BITRATE) -> bytes:
    """Any decodable audio → OGG/Opus, mono, 48 kHz (a Telegram voice note)."""
    return _encode_opus(data, bitrate, keep_pcm=False)[0]


def voice_note(data: bytes, *, bitrate: int = VOICE_BITRATE) -> VoiceNote:
    """Any decodable audio → VoiceNote(ogg, exact duration, packed waveform), one decode."""
    ogg, total, pcm = _encode_opus(data, bitrate, keep_pcm=True)
    packed = pack_levels(levels_from_pcm(pcm, VOICE_SAMPLE_RATE))
    return VoiceNote(ogg=ogg, duration_s=total / VOICE_SAMPLE_RATE, waveform=packed)


def waveform_levels(source: Pcm | bytes) -> list[int]:
    """100 levels in 0..31 (unpacked) from PCM or from encoded audio bytes."""
    pcm = source if isinstance(source, Pcm) else decode_pcm(source)
    return levels_from_pcm(pcm.samples, pcm.sample_rate)


def waveform(source: Pcm | bytes) -> bytes:
    """Telegram's packed voice waveform (63 bytes; see twin.voice.waveform for the format)."""
    return pack_levels(waveform_levels(source))


# -- test audio ---------------------------------------------------------------------------------
_TONE_FORMATS: dict[str, tuple[str, str, str, int, int | None]] = {
    # fmt: (muxer, encoder, encoder sample format, default rate, fixed frame size)
    "ogg_opus": ("ogg", "libopus", "s16", VOICE_SAMPLE_RATE, _OPUS_FRAME),
    "mp3": ("mp3", "libmp3lame", "s16p", 44_100, 1152),
    "wav": ("wav", "pcm_s16le", "s16", 44_100, None),
    "m4a": ("ipod", "aac", "fltp", 44_100, 1024),
}


def _sine(seconds: float, freq: float, rate: int, amplitude: float) -> array:
    n = round(seconds * rate)
    scale = max(0.0, min(1.0, amplitude)) * 32767
    step = 2 * math.pi * freq / rate
    if float(freq).is_integer():
        # one second holds a whole number of periods: build it once and repeat it
        second = array("h", (round(scale * math.sin(step * i)) for i in range(min(n, rate))))
        whole, rest = divmod(n, rate)
        return second * whole + second[:rest]
    return array("h", (round(scale * math.sin(step * i)) for i in range(n)))


def make_tone(
    seconds: float,
    freq: float = 440.0,
    fmt: ToneFormat = "ogg_opus",
    *,
    amplitude: float = 0.5,
    sample_rate: int | None = None,
    channels: int = 1,
) -> bytes:
    """Real encoded audio of a sine tone (amplitude 0 = encoded silence) for tests and fakes;
    `channels=2` puts the same tone on both channels."""
    if fmt not in _TONE_FORMATS:
        raise ValueError(f"unknown tone format {fmt!r}; one of {sorted(_TONE_FORMATS)}")
    rate = VOICE_SAMPLE_RATE if fmt == "ogg_opus" else (sample_rate or _TONE_FORMATS[fmt][3])
    return encode_pcm(Pcm(_sine(seconds, freq, rate, amplitude), rate), fmt, channels=channels)


def encode_pcm(pcm: Pcm, fmt: ToneFormat = "ogg_opus", *, channels: int = 1) -> bytes:
    """Encode mono int16 PCM as `fmt` (ogg_opus is resampled to 48 kHz; the others keep the
    PCM's rate). `channels=2` duplicates the signal onto both channels."""
    if fmt not in _TONE_FORMATS:
        raise ValueError(f"unknown tone format {fmt!r}; one of {sorted(_TONE_FORMATS)}")
    muxer, encoder, sample_fmt, _, frame_size = _TONE_FORMATS[fmt]
    in_rate = pcm.sample_rate
    rate = VOICE_SAMPLE_RATE if fmt == "ogg_opus" else in_rate
    layout = {1: "mono", 2: "stereo"}[channels]
    out = io.BytesIO()
    with av.open(out, mode="w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=rate, layout=layout)
        if fmt == "ogg_opus":
            stream.codec_context.bit_rate = VOICE_BITRATE * channels
        resampler = av.AudioResampler(
            format=sample_fmt, layout=layout, rate=rate, frame_size=frame_size
        )
        in_time_base = Fraction(1, in_rate)
        out_time_base = Fraction(1, rate)
        block = in_rate // 10
        total = 0

        def mux(frames: list[AudioFrame]) -> None:
            nonlocal total
            for out_frame in frames:
                out_frame.pts = total
                out_frame.time_base = out_time_base
                total += out_frame.samples
                container.mux(stream.encode(out_frame))

        for start in range(0, len(pcm.samples), block):
            part = pcm.samples[start : start + block]
            if channels == 2:  # interleave: the same full-level signal on both channels
                both = array("h", bytes(4 * len(part)))
                both[0::2] = part
                both[1::2] = part
                part = both
            frame = AudioFrame(format="s16", layout=layout, samples=len(part) // channels)
            frame.planes[0].update(part.tobytes())
            frame.sample_rate = in_rate
            frame.pts = start
            frame.time_base = in_time_base
            mux(resampler.resample(frame))
        mux(resampler.resample(None))
        container.mux(stream.encode(None))
    return out.getvalue()


# -- async wrappers (CPU-bound work off the event loop) ---------------------------------------
async def probe_async(data: bytes) -> AudioInfo:
    return await asyncio.to_thread(probe, data)


async def decode_pcm_async(data: bytes, *, rate: int | None = None) -> Pcm:
    return await asyncio.to_thread(decode_pcm, data, rate=rate)


async def to_ogg_opus_async(data: bytes, *, bitrate: int = VOICE_BITRATE) -> bytes:
    return await asyncio.to_thread(to_ogg_opus, data, bitrate=bitrate)


async def voice_note_async(data: bytes, *, bitrate: int = VOICE_BITRATE) -> VoiceNote:
    return await asyncio.to_thread(voice_note, data, bitrate=bitrate)


async def waveform_async(source: Pcm | bytes) -> bytes:
    return await asyncio.to_thread(waveform, source)
