"""Cost of voice-note audio work on one core: MP3 → OGG/Opus conversion and waveform.

    python bench/voice.py [--repeat N]

The input is speech-like rather than a pure tone (a 120-220 Hz voiced buzz with harmonics,
syllable-rate loudness changes, pauses and a little noise), encoded as 44.1 kHz mono MP3 at
128 kbps — what ElevenLabs' mp3_44100_128 returns. Each figure is the best of N runs, in
milliseconds and as a fraction of the audio's real time. The process is pinned to one CPU.
Target: well under 5 % of real time.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin.voice import audio
from twin.voice.models import Pcm
from twin.voice.waveform import levels_from_pcm, pack_levels

RATE = 44_100
DURATIONS = (5.0, 30.0, 120.0)


def speech_like(seconds: float, rate: int = RATE, seed: int = 7) -> Pcm:
    rng = random.Random(seed)
    n = round(seconds * rate)
    out = array("h", bytes(2 * n))
    phase = 0.0
    i = 0
    while i < n:
        syllable = round(rng.uniform(0.12, 0.35) * rate)
        pause = round(rng.choice([0.02, 0.05, 0.05, 0.3]) * rate)
        pitch = rng.uniform(120, 220)
        loud = rng.uniform(0.15, 0.7)
        for k in range(min(syllable, n - i)):
            envelope = loud * math.sin(math.pi * k / syllable)
            phase += 2 * math.pi * pitch / rate
            voiced = (
                math.sin(phase) + 0.5 * math.sin(2 * phase) + 0.25 * math.sin(3 * phase)
            ) / 1.75
            out[i + k] = round(32767 * (envelope * voiced + rng.uniform(-0.01, 0.01)))
        i += syllable + pause
    return Pcm(out, rate)


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"twin voice bench — PyAV, {cpus} CPU, best of {args.repeat}")
    header = (
        f"{'audio':>7} | {'MP3→OGG/Opus':>20} | {'waveform (PCM)':>18} | "
        f"{'voice_note (all)':>20} | {'probe':>9}"
    )
    print(header)
    print("-" * len(header))
    for seconds in DURATIONS:
        mp3 = audio.encode_pcm(speech_like(seconds), "mp3")
        pcm48 = audio.decode_pcm(mp3, rate=audio.VOICE_SAMPLE_RATE)
        real_ms = seconds * 1000

        convert = best_ms(lambda mp3=mp3: audio.to_ogg_opus(mp3), args.repeat)
        wave = best_ms(
            lambda pcm48=pcm48: pack_levels(levels_from_pcm(pcm48.samples, pcm48.sample_rate)),
            args.repeat,
        )
        note = best_ms(lambda mp3=mp3: audio.voice_note(mp3), args.repeat)
        probe = best_ms(lambda mp3=mp3: audio.probe(mp3), args.repeat)

        def cell(ms: float, width: int, real_ms: float = real_ms) -> str:
            return f"{ms:8.1f} ms {100 * ms / real_ms:5.2f}%".rjust(width)

        print(
            f"{seconds:>6.0f}s | {cell(convert, 20)} | {cell(wave, 18)} | "
            f"{cell(note, 20)} | {probe:6.2f} ms"
        )
    print("(% = processing time / audio duration; voice_note = decode + Opus + waveform)")


if __name__ == "__main__":
    main()
