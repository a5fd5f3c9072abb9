"""Human-looking timing: when the owner "reads", how long they "type", how replies are split.

Every function returns a `Delay` whose `reason` says how the number came about, so a log line or
the admin UI can show why a reply took 40 s. Randomness comes only from the `random.Random`
passed in, so a seeded rng reproduces every delay.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from twin.domain.conversation import ChatId
from twin.domain.policies.working_hours import parse_hhmm
from twin.domain.timing import LearnedTiming, draw_latency, human_seconds

# Telegram refuses longer text messages; bubbles never exceed it whatever the config says.
TELEGRAM_MAX_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float
    reason: str

    @property
    def as_timedelta(self) -> timedelta:
        return timedelta(seconds=self.seconds)


@dataclass(frozen=True, slots=True)
class HumanizeConfig:
    """Times in seconds. Defaults mirror [humanize] in config.toml."""

    # Read delay: log-normal (right-skewed like real response times) around the median.
    read_delay_median: float = 8.0
    read_delay_sigma: float = 0.6
    read_delay_min: float = 1.0
    read_delay_max: float = 90.0
    # Quicker when the contact wrote a moment ago: the owner is "in" the conversation.
    active_chat_minutes: float = 5.0
    active_chat_factor: float = 0.3
    # Slower at night (owner's local wall clock, "HH:MM"; window may cross midnight).
    night_start: str = "23:00"
    night_end: str = "07:00"
    night_factor: float = 2.0
    # Typing indicator duration; 0 cps = no typing time.
    typing_cps: float = 6.0
    typing_jitter: float = 0.2  # ± fraction
    typing_min: float = 1.0
    typing_max: float = 25.0
    # "Recording voice" indicator, chars of the spoken text per second; 0 = none.
    recording_cps: float = 14.0
    recording_max: float = 60.0
    # Long replies go out as several messages, with a pause between them.
    bubble_max_chars: int = 600
    bubble_pause: float = 1.5
    # Draw the read delay (and take the typing speed) from the owner's measured timing
    # (`twin style build`, twin.domain.timing) when `timing` is attached and has enough data.
    learned: bool = False
    timing: LearnedTiming | None = field(default=None, repr=False, compare=False)
    _night: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in (
            "read_delay_median",
            "read_delay_sigma",
            "read_delay_min",
            "read_delay_max",
            "active_chat_minutes",
            "active_chat_factor",
            "night_factor",
            "typing_cps",
            "typing_min",
            "typing_max",
            "recording_cps",
            "recording_max",
            "bubble_pause",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"humanize.{name}: must be a finite number >= 0, got {value}")
        for low, high in (
            ("read_delay_min", "read_delay_max"),
            ("typing_min", "typing_max"),
            ("typing_min", "recording_max"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"humanize.{low} ({getattr(self, low)}) > {high}")
        if not 0 <= self.typing_jitter < 1:
            raise ValueError(f"humanize.typing_jitter: must be in [0, 1), got {self.typing_jitter}")
        if not 1 <= self.bubble_max_chars <= TELEGRAM_MAX_CHARS:
            raise ValueError(
                f"humanize.bubble_max_chars: must be in 1..{TELEGRAM_MAX_CHARS}, "
                f"got {self.bubble_max_chars}"
            )
        night = (
            parse_hhmm(self.night_start, where="humanize.night_start"),
            parse_hhmm(self.night_end, where="humanize.night_end"),
        )
        object.__setattr__(self, "_night", night)

    @classmethod
    def instant(cls) -> HumanizeConfig:
        """No artificial delays at all ([humanize] enabled = false, and tests)."""
        return cls(
            read_delay_median=0,
            read_delay_sigma=0,
            read_delay_min=0,
            read_delay_max=0,
            typing_min=0,
            typing_max=0,
            recording_max=0,
            bubble_pause=0,
            bubble_max_chars=TELEGRAM_MAX_CHARS,
        )

    def is_night(self, now_local: datetime) -> bool:
        start, end = self._night
        minute = now_local.hour * 60 + now_local.minute
        if start == end:
            return False
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end


def is_chat_active(cfg: HumanizeConfig, last_incoming_at: datetime | None, now: datetime) -> bool:
    """The contact's previous message is recent enough that the owner would still be around."""
    if last_incoming_at is None:
        return False
    return now - last_incoming_at <= timedelta(minutes=cfg.active_chat_minutes)


def _clamp(value: float, low: float, high: float) -> tuple[float, str]:
    if value < low:
        return low, f" → clamped to min {low:g} s"
    if value > high:
        return high, f" → clamped to max {high:g} s"
    return value, ""


def read_delay(
    cfg: HumanizeConfig,
    rng: random.Random,
    *,
    now_local: datetime,
    chat_active: bool,
    chat_id: ChatId | None = None,
) -> Delay:
    """How long until the owner "opens" the chat. `now_local` is the owner's wall clock.

    With `cfg.learned` and a learned timing attached, the delay is the owner's own reply latency
    drawn for this contact or hour of the week (twin.domain.timing.draw_latency), only clamped:
    the active-chat and night factors are already in the owner's data."""
    learned_note = ""
    if cfg.learned:
        timing = cfg.timing
        pick = None
        if timing is not None:
            pick = draw_latency(timing, rng, at=now_local, chat_id=chat_id)
        if pick is not None:
            seconds, level = pick
            value, clamp_note = _clamp(seconds, cfg.read_delay_min, cfg.read_delay_max)
            return Delay(
                value,
                f"read delay {value:.1f} s: learned: owner's median for {level.label} is "
                f"{human_seconds(level.median_s)} ({level.samples} replies), drew "
                f"{human_seconds(seconds)}{clamp_note}",
            )
        measured = 0 if timing is None else timing.samples
        learned_note = f"learned: too few replies measured ({measured}), configured "
    if cfg.read_delay_median > 0 and cfg.read_delay_sigma > 0:
        drawn = rng.lognormvariate(math.log(cfg.read_delay_median), cfg.read_delay_sigma)
    else:
        drawn = cfg.read_delay_median  # exp(log(m)) is not always m in floating point
    parts = [
        f"{learned_note}median {cfg.read_delay_median:g} s (σ {cfg.read_delay_sigma:g}) "
        f"drew {drawn:.1f} s"
    ]
    value = drawn
    if chat_active:
        value *= cfg.active_chat_factor
        parts.append(f"× {cfg.active_chat_factor:g} active chat")
    if cfg.is_night(now_local):
        value *= cfg.night_factor
        parts.append(f"× {cfg.night_factor:g} night ({cfg.night_start}-{cfg.night_end})")
    value, clamp_note = _clamp(value, cfg.read_delay_min, cfg.read_delay_max)
    return Delay(value, f"read delay {value:.1f} s: {' '.join(parts)}{clamp_note}")


def typing_duration(
    cfg: HumanizeConfig, rng: random.Random, text: str, *, voice: bool = False
) -> Delay:
    """How long to show "typing…" (or "recording voice…") before sending `text`."""
    chars = len(text.strip())
    what = "recording" if voice else "typing"
    cps = cfg.recording_cps if voice else cfg.typing_cps
    high = cfg.recording_max if voice else cfg.typing_max
    if chars == 0 or cps == 0:
        return Delay(0.0, f"{what} 0 s: nothing to {what[:-3]}")
    speed = f"{cps:g} cps"
    timing = cfg.timing if cfg.learned else None
    if not voice and timing is not None and timing.typing_cps:
        cps = timing.typing_cps
        speed = f"{cps:.1f} cps (learned from {timing.typing_samples} owner messages)"
    jitter = rng.uniform(1 - cfg.typing_jitter, 1 + cfg.typing_jitter)
    value, clamp_note = _clamp(chars / cps * jitter, cfg.typing_min, high)
    return Delay(
        value,
        f"{what} {value:.1f} s: {chars} chars at {speed} × {jitter:.2f} jitter{clamp_note}",
    )


def bubble_pause(cfg: HumanizeConfig, rng: random.Random) -> Delay:
    """Pause between two bubbles of one reply (before the next typing indicator)."""
    if cfg.bubble_pause == 0:
        return Delay(0.0, "bubble pause 0 s")
    jitter = rng.uniform(1 - cfg.typing_jitter, 1 + cfg.typing_jitter)
    value = cfg.bubble_pause * jitter
    return Delay(value, f"bubble pause {value:.1f} s: {cfg.bubble_pause:g} s × {jitter:.2f}")


# --- bubbles -------------------------------------------------------------------------------

# Coarsest first: paragraphs, lines, sentences, words.
_SEPARATORS = (
    re.compile(r"\n[^\S\n]*\n\s*"),
    re.compile(r"\s*\n\s*"),
    re.compile(r"(?<=[.!?…])\s+"),
    re.compile(r"\s+"),
)


def split_bubbles(text: str, max_chars: int) -> list[str]:
    """Split a reply into messages of at most `max_chars`, at the coarsest boundary that works.

    Pieces that fit are packed together (keeping their original separators), so a list of short
    paragraphs is not sent as a dozen messages. Only a single word longer than `max_chars` is cut.
    Bubbles are stripped and never empty; their concatenation holds exactly the text's
    non-whitespace characters, in order.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    out: list[str] = []
    _split(text, 0, len(text), max_chars, 0, out)
    return out


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split(text: str, start: int, end: int, max_chars: int, level: int, out: list[str]) -> None:
    start, end = _strip_span(text, start, end)
    if start == end:
        return
    if end - start <= max_chars:
        out.append(text[start:end])
        return
    if level == len(_SEPARATORS):
        # A single "word" longer than a bubble (a URL, a wall of emoji): cut it.
        out.extend(text[i : min(i + max_chars, end)] for i in range(start, end, max_chars))
        return
    pieces = []
    pos = start
    for match in _SEPARATORS[level].finditer(text, start, end):
        pieces.append((pos, match.start()))
        pos = match.end()
    pieces.append((pos, end))
    pieces = [p for p in (_strip_span(text, s, e) for s, e in pieces) if p[0] < p[1]]
    if len(pieces) == 1:
        _split(text, start, end, max_chars, level + 1, out)
        return
    packed: tuple[int, int] | None = None
    for piece_start, piece_end in pieces:
        if piece_end - piece_start > max_chars:
            if packed is not None:
                out.append(text[packed[0] : packed[1]])
                packed = None
            _split(text, piece_start, piece_end, max_chars, level + 1, out)
        elif packed is not None and piece_end - packed[0] <= max_chars:
            packed = (packed[0], piece_end)
        else:
            if packed is not None:
                out.append(text[packed[0] : packed[1]])
            packed = (piece_start, piece_end)
    if packed is not None:
        out.append(text[packed[0] : packed[1]])
