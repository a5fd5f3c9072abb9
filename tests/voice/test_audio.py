"""twin.voice.audio: PyAV conversion to Telegram voice notes, probing, decoding, test tones."""

from __future__ import annotations

import asyncio
import random
import threading
from array import array

import pytest

from tests.voice.media import inspect_audio
from twin.voice import audio
from twin.voice.errors import AudioError
from twin.voice.waveform import WAVEFORM_BYTES, unpack_levels


def test_encoders_needed_are_bundled() -> None:
    import av

    assert {"libopus", "libmp3lame", "aac", "pcm_s16le"} <= av.codecs_available


@pytest.mark.parametrize(
    ("fmt", "channels"),
    [("mp3", 1), ("mp3", 2), ("wav", 2), ("m4a", 1), ("ogg_opus", 1)],
)
def test_any_input_becomes_ogg_opus_mono_48k_of_the_same_length(fmt: str, channels: int) -> None:
    source = audio.make_tone(3.0, fmt=fmt, channels=channels)  # type: ignore[arg-type]
    src = inspect_audio(source)
    assert src.channels == channels

    out = inspect_audio(audio.to_ogg_opus(source))

    assert (out.container, out.codec) == ("ogg", "opus")
    assert out.channels == 1
    assert out.sample_rate == 48_000
    assert out.duration_s == pytest.approx(src.duration_s, rel=0.05)


def test_voice_note_has_exact_duration_and_a_real_waveform() -> None:
    note = audio.voice_note(audio.make_tone(2.0, fmt="mp3"))

    decoded = inspect_audio(note.ogg)
    assert decoded.codec == "opus"
    assert note.duration_s == pytest.approx(decoded.duration_s, abs=0.03)
    assert note.duration_s == pytest.approx(2.0, rel=0.02)
    assert note.telegram_duration == 2
    assert len(note.waveform) == WAVEFORM_BYTES
    levels = unpack_levels(note.waveform)
    assert len(levels) == 100
    assert all(10 <= level <= 31 for level in levels)  # a steady tone: a flat, visible bar


def test_bitrate_is_honoured() -> None:
    source = audio.make_tone(4.0, fmt="wav")
    low = audio.to_ogg_opus(source, bitrate=12_000)
    high = audio.to_ogg_opus(source, bitrate=64_000)
    assert len(low) < len(high)


def test_probe_reports_codec_rate_channels_and_duration() -> None:
    info = audio.probe(audio.make_tone(1.5, fmt="mp3", sample_rate=22_050, channels=2))
    assert (info.codec, info.sample_rate, info.channels, info.container) == (
        "mp3",
        22_050,
        2,
        "mp3",
    )
    assert info.duration_s == pytest.approx(1.5, rel=0.02)

    opus = audio.probe(audio.make_tone(2.0, fmt="ogg_opus"))
    assert (opus.codec, opus.sample_rate, opus.container) == ("opus", 48_000, "ogg")
    assert opus.duration_s == pytest.approx(2.0, abs=0.01)  # pre-skip not counted


def test_decode_pcm_is_mono_int16_at_source_or_requested_rate() -> None:
    source = audio.make_tone(1.0, fmt="wav", sample_rate=16_000, channels=2, amplitude=0.5)
    samples, rate = audio.decode_pcm(source)
    assert isinstance(samples, array)
    assert samples.typecode == "h"
    assert rate == 16_000
    assert len(samples) == 16_000
    assert 0.45 * 32767 < max(samples) <= 0.51 * 32767

    resampled = audio.decode_pcm(source, rate=8_000)
    assert resampled.sample_rate == 8_000
    assert len(resampled.samples) == pytest.approx(8_000, abs=64)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"definitely not audio",
        random.Random(7).randbytes(50_000),
        b"ID3" + bytes(200),
        b"OggS" + bytes(60),
    ],
    ids=["empty", "text", "random", "id3-header-only", "ogg-magic-only"],
)
def test_garbage_is_an_audio_error(garbage: bytes) -> None:
    with pytest.raises(AudioError):
        audio.probe(garbage)
    with pytest.raises(AudioError):
        audio.to_ogg_opus(garbage)
    with pytest.raises(AudioError):
        audio.decode_pcm(garbage)


def test_make_tone_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="unknown tone format"):
        audio.make_tone(1.0, fmt="flac")  # type: ignore[arg-type]


async def test_async_wrappers_run_off_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = audio.voice_note

    def spy(data: bytes, *, bitrate: int = audio.VOICE_BITRATE):
        seen.append(threading.get_ident())
        return real(data, bitrate=bitrate)

    monkeypatch.setattr(audio, "voice_note", spy)
    note = await audio.voice_note_async(audio.make_tone(1.0, fmt="mp3"))

    assert seen and seen[0] != loop_thread
    assert inspect_audio(note.ogg).codec == "opus"
    info, ogg, packed = await asyncio.gather(
        audio.probe_async(note.ogg),
        audio.to_ogg_opus_async(audio.make_tone(0.5, fmt="wav")),
        audio.waveform_async(note.ogg),
    )
    assert info.codec == "opus"
    assert inspect_audio(ogg).codec == "opus"
    assert len(packed) == WAVEFORM_BYTES
    with pytest.raises(AudioError):
        await audio.probe_async(b"nope")
