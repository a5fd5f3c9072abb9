"""Telegram's voice-note waveform, computed the way Telegram Desktop does it (pure, stdlib only).

Algorithm (tdesktop `Media::Capture`, which the mobile clients match):

1. Split mono 16-bit PCM into chunks of 10 ms (`sample_rate // 100` samples) and keep each
   chunk's peak |sample|, quantised to a multiple of 256 (tdesktop stores `peak / 256` in a byte).
2. Fold the chunk peaks into exactly 100 buckets, each the max of its chunks. Chunk i closes a
   bucket when the running sum `Σ 100` reaches the chunk count (integer Bresenham, so the buckets
   differ in size by at most one chunk and there are exactly 100).
3. Normalise against `norm = max(int(mean(bucket peaks) * 1.8), 2500)`:
   `level = min(31, min(peak, norm) * 31 // norm)`. A steady loud signal therefore sits near
   31 / 1.8 ≈ 17 with headroom for louder syllables, quiet input (peaks below ≈ 2500 / 32768)
   stays visibly low, and silence is 0.

   Audio shorter than 100 chunks (< 1 s) uses proportionally shorter chunks so there are always
   100 levels (tdesktop would send no waveform at all).

Packing (`pack_levels`): 100 five-bit values, value i occupies bits [5·i, 5·i + 5) of the byte
string read as one little-endian integer — i.e. LSB-first: byte = i·5 // 8, shift = i·5 % 8,
possibly spilling into the next byte. 500 bits → 63 bytes (the top 4 bits of the last byte are
zero). This is bit-for-bit what `telethon.utils.encode_waveform` produces (the tests check it),
so the bytes go straight into `DocumentAttributeAudio(waveform=…)`. Telethon is not imported
here (it stays in adapters/telegram), and its `decode_waveform` misreads the last value
(telethon 1.45: shift by index instead of index·5), so `unpack_levels` is our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

WAVEFORM_SAMPLES = 100
WAVEFORM_BITS = 5
WAVEFORM_MAX = (1 << WAVEFORM_BITS) - 1  # 31
WAVEFORM_BYTES = ceil(WAVEFORM_SAMPLES * WAVEFORM_BITS / 8)  # 63
_NORM_FACTOR = 1.8
_NORM_FLOOR = 2500


def chunk_peaks(samples: Sequence[int], sample_rate: int) -> list[int]:
    """Step 1: peak |sample| per 10 ms chunk, quantised to multiples of 256."""
    n = len(samples)
    if n == 0:
        return []
    chunk = max(1, sample_rate // 100)
    if n < WAVEFORM_SAMPLES * chunk:  # short clip: still produce 100 buckets
        chunk = max(1, n // WAVEFORM_SAMPLES)
    peaks = []
    for start in range(0, n, chunk):
        part = samples[start : start + chunk]
        peak = max(max(part), -min(part))
        peaks.append(min(peak, 32767) >> 8 << 8)
    return peaks


def fold_levels(peaks: Sequence[int]) -> list[int]:
    """Steps 2 and 3: chunk peaks → exactly 100 levels in 0..31."""
    count = len(peaks)
    if count == 0:
        return [0] * WAVEFORM_SAMPLES
    buckets: list[int] = []
    if count >= WAVEFORM_SAMPLES:
        acc = 0
        peak = 0
        for value in peaks:
            peak = max(peak, value)
            acc += WAVEFORM_SAMPLES
            if acc >= count:
                acc -= count
                buckets.append(peak)
                peak = 0
    else:  # fewer than 100 chunks (only for clips of < 100 samples): pad with silence
        buckets = [*peaks, *([0] * (WAVEFORM_SAMPLES - count))]
    norm = max(int(sum(buckets) * _NORM_FACTOR / len(buckets)), _NORM_FLOOR)
    return [min(WAVEFORM_MAX, min(value, norm) * WAVEFORM_MAX // norm) for value in buckets]


def levels_from_pcm(samples: Sequence[int], sample_rate: int) -> list[int]:
    """Mono int16 samples → 100 levels in 0..31."""
    return fold_levels(chunk_peaks(samples, sample_rate))


def pack_levels(levels: Sequence[int]) -> bytes:
    """5-bit values → bytes, LSB-first (see module docstring). 100 values → 63 bytes."""
    bits = 0
    for i, value in enumerate(levels):
        if not 0 <= value <= WAVEFORM_MAX:
            raise ValueError(f"waveform value {value} is not in 0..{WAVEFORM_MAX}")
        bits |= value << (i * WAVEFORM_BITS)
    return bits.to_bytes(ceil(len(levels) * WAVEFORM_BITS / 8), "little")


def unpack_levels(packed: bytes) -> list[int]:
    """Inverse of `pack_levels`: every complete 5-bit group (63 bytes → 100 values)."""
    bits = int.from_bytes(packed, "little")
    count = len(packed) * 8 // WAVEFORM_BITS
    return [(bits >> (i * WAVEFORM_BITS)) & WAVEFORM_MAX for i in range(count)]
