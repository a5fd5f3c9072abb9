from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.policies.delays import (
    TELEGRAM_MAX_CHARS,
    HumanizeConfig,
    bubble_pause,
    is_chat_active,
    read_delay,
    split_bubbles,
    typing_duration,
)

NOON = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
NIGHT = datetime(2025, 1, 6, 2, 0, tzinfo=UTC)
# sigma 0 and no jitter make every delay exact
EXACT = HumanizeConfig(read_delay_sigma=0, typing_jitter=0)


def rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


class TestConfig:
    @pytest.mark.parametrize(
        ("change", "error"),
        [
            ({"read_delay_median": -1}, r"humanize\.read_delay_median: must be a finite number"),
            ({"typing_max": float("inf")}, r"humanize.typing_max: must be a finite"),
            ({"read_delay_min": 100, "read_delay_max": 10}, r"read_delay_min \(100\) > read_"),
            ({"typing_min": 5, "typing_max": 1}, r"typing_min \(5\) > typing_max"),
            ({"typing_jitter": 1.0}, r"humanize.typing_jitter: must be in \[0, 1\)"),
            ({"bubble_max_chars": 0}, r"humanize.bubble_max_chars: must be in 1..4096"),
            ({"bubble_max_chars": TELEGRAM_MAX_CHARS + 1}, r"bubble_max_chars"),
            ({"night_start": "11pm"}, r"humanize.night_start: '11pm' is not HH:MM"),
        ],
    )
    def test_invalid(self, change: dict[str, object], error: str) -> None:
        with pytest.raises(ValueError, match=error):
            HumanizeConfig(**change)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("start", "end", "hour", "night"),
        [
            ("23:00", "07:00", 23, True),
            ("23:00", "07:00", 2, True),
            ("23:00", "07:00", 7, False),
            ("23:00", "07:00", 22, False),
            ("01:00", "05:00", 3, True),
            ("01:00", "05:00", 5, False),
            ("00:00", "00:00", 3, False),  # an empty window: no night
        ],
    )
    def test_night_window(self, start: str, end: str, hour: int, night: bool) -> None:
        cfg = HumanizeConfig(night_start=start, night_end=end)
        assert cfg.is_night(NOON.replace(hour=hour)) is night


def test_all_zero_config_means_no_delays_at_all() -> None:
    cfg = HumanizeConfig.instant()
    r = rng()
    for now_local in (NOON, NIGHT):
        for active in (True, False):
            assert read_delay(cfg, r, now_local=now_local, chat_active=active).seconds == 0
    assert typing_duration(cfg, r, "hello there " * 50).seconds == 0
    assert typing_duration(cfg, r, "hello there", voice=True).seconds == 0
    assert bubble_pause(cfg, r).seconds == 0
    assert split_bubbles("x " * 1000, cfg.bubble_max_chars) == [("x " * 1000).strip()]


class TestReadDelay:
    def test_median_when_sigma_is_zero(self) -> None:
        delay = read_delay(EXACT, rng(), now_local=NOON, chat_active=False)
        assert delay.seconds == pytest.approx(8.0)
        assert delay.reason.startswith("read delay 8.0 s: median 8 s")

    def test_active_chat_is_quicker_and_says_so(self) -> None:
        delay = read_delay(EXACT, rng(), now_local=NOON, chat_active=True)
        assert delay.seconds == pytest.approx(8.0 * 0.3)
        assert delay.reason.startswith("read delay 2.4 s: median 8 s")
        assert "× 0.3 active chat" in delay.reason

    def test_night_is_slower(self) -> None:
        delay = read_delay(EXACT, rng(), now_local=NIGHT, chat_active=False)
        assert delay.seconds == pytest.approx(16.0)
        assert "× 2 night (23:00-07:00)" in delay.reason

    def test_factors_combine(self) -> None:
        delay = read_delay(EXACT, rng(), now_local=NIGHT, chat_active=True)
        assert delay.seconds == pytest.approx(8.0 * 0.3 * 2)

    def test_clamped_and_explained(self) -> None:
        cfg = replace(EXACT, read_delay_min=5)
        delay = read_delay(cfg, rng(), now_local=NOON, chat_active=True)
        assert delay.seconds == 5
        assert delay.reason.endswith("clamped to min 5 s")
        cfg = replace(EXACT, read_delay_max=3)
        assert read_delay(cfg, rng(), now_local=NOON, chat_active=False).seconds == 3

    def test_seeded_rng_reproduces_and_varies(self) -> None:
        cfg = HumanizeConfig()
        draws = [read_delay(cfg, rng(7), now_local=NOON, chat_active=False) for _ in range(2)]
        assert draws[0] == draws[1]
        r = rng(7)
        values = {read_delay(cfg, r, now_local=NOON, chat_active=False).seconds for _ in range(20)}
        assert len(values) > 10

    def test_distribution_centres_on_the_median(self) -> None:
        cfg = HumanizeConfig(read_delay_min=0, read_delay_max=10_000)
        r = rng(3)
        values = sorted(
            read_delay(cfg, r, now_local=NOON, chat_active=False).seconds for _ in range(2001)
        )
        assert 7.0 < values[1000] < 9.0

    @settings(deadline=None)
    @given(
        seed=st.integers(0, 2**32),
        median=st.floats(0, 600),
        sigma=st.floats(0, 3),
        low=st.floats(0, 60),
        span=st.floats(0, 600),
        active=st.booleans(),
        hour=st.integers(0, 23),
    )
    def test_always_within_min_max(
        self,
        seed: int,
        median: float,
        sigma: float,
        low: float,
        span: float,
        active: bool,
        hour: int,
    ) -> None:
        cfg = HumanizeConfig(
            read_delay_median=median,
            read_delay_sigma=sigma,
            read_delay_min=low,
            read_delay_max=low + span,
        )
        delay = read_delay(cfg, rng(seed), now_local=NOON.replace(hour=hour), chat_active=active)
        assert low <= delay.seconds <= low + span
        assert delay.reason.startswith(f"read delay {delay.seconds:.1f} s")


class TestTyping:
    def test_length_based(self) -> None:
        delay = typing_duration(EXACT, rng(), "x" * 60)
        assert delay.seconds == pytest.approx(10.0)
        assert delay.reason == "typing 10.0 s: 60 chars at 6 cps × 1.00 jitter"

    def test_surrounding_whitespace_is_not_typed(self) -> None:
        assert typing_duration(EXACT, rng(), "  " + "x" * 60 + "\n").seconds == pytest.approx(10)

    def test_clamped(self) -> None:
        assert typing_duration(EXACT, rng(), "ok").seconds == 1.0
        long = typing_duration(EXACT, rng(), "x" * 10_000)
        assert long.seconds == 25.0
        assert "clamped to max 25 s" in long.reason

    def test_nothing_to_type(self) -> None:
        assert typing_duration(EXACT, rng(), "   ").seconds == 0

    def test_voice_uses_recording_speed_and_cap(self) -> None:
        delay = typing_duration(EXACT, rng(), "x" * 140, voice=True)
        assert delay.seconds == pytest.approx(10.0)
        assert delay.reason.startswith("recording 10.0 s: 140 chars at 14 cps")
        assert typing_duration(EXACT, rng(), "x" * 10_000, voice=True).seconds == 60.0

    def test_zero_speed_means_no_indicator(self) -> None:
        cfg = replace(EXACT, typing_cps=0, recording_cps=0)
        assert typing_duration(cfg, rng(), "hello").seconds == 0
        assert typing_duration(cfg, rng(), "hello", voice=True).seconds == 0

    @given(
        seed=st.integers(0, 2**32),
        text=st.text(max_size=500),
        jitter=st.floats(0, 0.99),
        voice=st.booleans(),
    )
    def test_always_within_min_max(self, seed: int, text: str, jitter: float, voice: bool) -> None:
        cfg = HumanizeConfig(typing_jitter=jitter)
        delay = typing_duration(cfg, rng(seed), text, voice=voice)
        high = cfg.recording_max if voice else cfg.typing_max
        if text.strip():
            assert cfg.typing_min <= delay.seconds <= high
        else:
            assert delay.seconds == 0

    def test_bubble_pause_jitters_around_the_setting(self) -> None:
        r = rng(5)
        pauses = [bubble_pause(HumanizeConfig(), r).seconds for _ in range(50)]
        assert all(1.5 * 0.8 <= p <= 1.5 * 1.2 for p in pauses)
        assert len(set(pauses)) > 1


def test_chat_activity_window() -> None:
    cfg = HumanizeConfig(active_chat_minutes=5)
    assert not is_chat_active(cfg, None, NOON)
    assert is_chat_active(cfg, NOON - timedelta(minutes=5), NOON)
    assert not is_chat_active(cfg, NOON - timedelta(minutes=5, seconds=1), NOON)


class TestSplitBubbles:
    def test_short_text_is_one_bubble(self) -> None:
        assert split_bubbles("  Hello!\n\nHow are you?  ", 100) == ["Hello!\n\nHow are you?"]

    def test_nothing_to_send(self) -> None:
        assert split_bubbles("", 10) == []
        assert split_bubbles(" \n\t ", 10) == []

    def test_paragraphs_first(self) -> None:
        text = "First paragraph here.\n\nSecond one, a bit longer."
        assert split_bubbles(text, 30) == ["First paragraph here.", "Second one, a bit longer."]

    def test_short_pieces_are_packed(self) -> None:
        text = "- milk\n\n- eggs\n\n- bread\n\n- a very long item that goes alone"
        assert split_bubbles(text, 40) == [
            "- milk\n\n- eggs\n\n- bread",
            "- a very long item that goes alone",
        ]

    def test_then_lines(self) -> None:
        assert split_bubbles("line one\nline two\nline three", 18) == [
            "line one\nline two",
            "line three",
        ]

    def test_then_sentences(self) -> None:
        text = "Sure, I can do that. Friday works for me! What time? Evening is best."
        assert split_bubbles(text, 40) == [
            "Sure, I can do that.",
            "Friday works for me! What time?",
            "Evening is best.",
        ]

    def test_then_words(self) -> None:
        assert split_bubbles("one two three four five", 9) == ["one two", "three", "four five"]

    def test_a_word_longer_than_a_bubble_is_cut(self) -> None:
        assert split_bubbles("see https://example.com/abcdef", 10) == [
            "see",
            "https://ex",
            "ample.com/",
            "abcdef",
        ]

    def test_max_chars_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="max_chars"):
            split_bubbles("hi", 0)

    @given(
        text=st.text(alphabet=st.sampled_from("ab cdé.!?…\n\n\t,😀"), max_size=400),
        max_chars=st.integers(1, 120),
    )
    def test_properties(self, text: str, max_chars: int) -> None:
        bubbles = split_bubbles(text, max_chars)
        assert all(bubble and len(bubble) <= max_chars for bubble in bubbles)
        assert all(bubble == bubble.strip() for bubble in bubbles)
        assert re.sub(r"\s", "", "".join(bubbles)) == re.sub(r"\s", "", text)
        if len(text.strip()) <= max_chars:
            assert bubbles == ([text.strip()] if text.strip() else [])
        if all(len(word) <= max_chars for word in text.split()):
            # words stay whole
            assert [w for b in bubbles for w in b.split()] == text.split()

    @given(text=st.text(max_size=300), max_chars=st.integers(1, 50))
    def test_any_unicode_round_trips(self, text: str, max_chars: int) -> None:
        bubbles = split_bubbles(text, max_chars)
        assert all(0 < len(b) <= max_chars for b in bubbles)
        assert "".join("".join(b.split()) for b in bubbles) == "".join(text.split())
