"""Offline token estimation: conservative, deterministic, monotone, subadditive."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from twin.domain import tokens
from twin.domain.tokens import (
    MESSAGE_OVERHEAD,
    estimate_message_tokens,
    estimate_tokens,
    truncate_to_tokens,
)

ENGLISH = (
    "Hey! Sorry I missed your call, I was at the gym. Are we still on for dinner tomorrow "
    "around seven? I can book a table at that Italian place near the station if you like."
)
RUSSIAN = (
    "Привет! Извини, что пропустил звонок, был в спортзале. Мы всё ещё идём завтра ужинать "
    "около семи? Могу забронировать столик в том итальянском ресторане у вокзала."
)
CHINESE = "你好！抱歉我错过了你的电话，我在健身房。我们明天七点左右还去吃晚饭吗？"
EMOJI = "😂👍🙏❤️🔥🎉"


def test_empty_text_is_zero_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_message_tokens("") == MESSAGE_OVERHEAD


def test_known_english_counts_are_not_underestimated() -> None:
    # cl100k/o200k counts of these strings are 4 and 10 tokens
    assert estimate_tokens("Hello, world!") >= 4
    assert estimate_tokens("The quick brown fox jumps over the lazy dog.") >= 10


def test_english_prose_is_at_least_four_characters_per_token_but_not_absurd() -> None:
    estimate = estimate_tokens(ENGLISH)
    assert estimate >= len(ENGLISH) / 4
    assert estimate <= len(ENGLISH) / 2


def test_cyrillic_costs_more_than_latin_per_character() -> None:
    # Cyrillic splits into short pieces in BPE vocabularies: ~2-3 characters per token
    estimate = estimate_tokens(RUSSIAN)
    assert estimate >= len(RUSSIAN) / 3
    assert estimate / len(RUSSIAN) > estimate_tokens(ENGLISH) / len(ENGLISH)


def test_cjk_is_at_least_one_token_per_character() -> None:
    assert estimate_tokens(CHINESE) >= len(CHINESE)


def test_emoji_are_at_least_two_tokens_each() -> None:
    assert estimate_tokens(EMOJI) >= 2 * 6
    assert estimate_tokens("👍") >= 2


def test_estimate_is_deterministic() -> None:
    assert [estimate_tokens(t) for t in (ENGLISH, RUSSIAN, CHINESE, EMOJI)] == [
        estimate_tokens(t) for t in (ENGLISH, RUSSIAN, CHINESE, EMOJI)
    ]


@given(st.text(), st.text())
def test_monotone_when_text_grows(a: str, b: str) -> None:
    assert estimate_tokens(a + b) >= estimate_tokens(a)
    assert estimate_tokens(a + b) >= estimate_tokens(b)


@given(st.text(), st.text())
def test_subadditive(a: str, b: str) -> None:
    assert estimate_tokens(a + b) <= estimate_tokens(a) + estimate_tokens(b)


def test_the_margin_is_exact_where_floats_are_not() -> None:
    """Found by the property above: raw costs 10 and 40 (estimates 11 and 44) joined cost 50,
    and 50 × 1.1 is 55.00000000000001 in floats — the estimate was 56, above the parts' 55."""
    a, b = "0:0\x800¬", "0:0:0:0\x800\x800\x80\x800\x80´×\U00018cd6\U00018d09\U00018d09"
    assert (tokens._raw_cost(a), tokens._raw_cost(b), tokens._raw_cost(a + b)) == (10, 40, 50)
    assert (estimate_tokens(a), estimate_tokens(b), estimate_tokens(a + b)) == (11, 44, 55)


def _margined(raw: float) -> int:
    """The margin applied with exact fractions (the reference for the estimator's integers)."""
    return math.ceil(Fraction(raw) * Fraction(str(tokens.MARGIN)))


@given(st.text(min_size=1), st.integers(min_value=0, max_value=200))
def test_truncate_fits_and_keeps_the_end(text: str, budget: int) -> None:
    cut = truncate_to_tokens(text, budget, keep="end")
    assert estimate_tokens(cut) <= budget
    if cut and cut != text:
        assert cut.startswith("…")
        assert text.endswith(cut[1:])


@given(st.text(min_size=1), st.integers(min_value=0, max_value=200))
def test_truncate_keep_start(text: str, budget: int) -> None:
    cut = truncate_to_tokens(text, budget, keep="start")
    assert estimate_tokens(cut) <= budget
    if cut and cut != text:
        assert cut.endswith("…")
        assert text.startswith(cut[:-1])


def test_truncate_keeps_as_much_as_fits() -> None:
    text = "word " * 400
    cut = truncate_to_tokens(text, 50)
    assert estimate_tokens(cut) <= 50
    # one more character of the text would not fit
    longer = "…" + text[-len(cut) :]
    assert estimate_tokens(longer) > 50


# The charging rules of the module docstring, applied run by run, character by character: the
# specification the vectorised estimator must match exactly.
_RUN_CHARGE = {
    tokens._ASCII_LETTER: lambda n: math.ceil(n / 4),
    tokens._CYRILLIC: lambda n: math.ceil(n / 2),
    tokens._OTHER_LETTER: lambda n: n,
    tokens._DIGIT: lambda n: math.ceil(n / 3),
    tokens._CJK: lambda n: math.ceil(1.5 * n),
    tokens._SYMBOL: lambda n: 3 * n,
    tokens._PUNCT: lambda n: n,
    tokens._NEWLINE: lambda n: n,
    tokens._MODIFIER: lambda n: n,
    tokens._SPACE: lambda n: n / 4,
}


def _reference_cost(text: str) -> float:
    total = 0.0
    for cls, run in itertools.groupby(text, tokens._char_class):
        total += _RUN_CHARGE[cls](len(list(run)))
    return total


_MIXED = st.text(
    alphabet=st.sampled_from(
        list("ab Z09 \n\t.,!-")
        + list("жЖё")
        + ["é", "ß", "α", "ع", "你", "か", "한", "😂", "❤"]
        + ["\ufe0f", "\u200d", "\U0001f3fb", "\u20e3", "\u2028", "\u00a0", "٣", "Ⅻ", "€", "\x00"]
    )
)


@given(st.one_of(st.text(), _MIXED))
def test_vectorised_estimate_matches_the_run_by_run_rules(text: str) -> None:
    assert tokens._raw_cost(text) == _reference_cost(text)
    assert estimate_tokens(text) == (
        _margined(_reference_cost(text)) if text else 0
    )


def test_known_texts_match_the_run_by_run_rules() -> None:
    for text in (ENGLISH, RUSSIAN, CHINESE, EMOJI, ENGLISH + RUSSIAN + CHINESE + EMOJI * 3):
        assert tokens._raw_cost(text) == _reference_cost(text)


def test_class_cache_stays_bounded() -> None:
    rare = "".join(chr(cp) for cp in range(0x1D400, 0x1D400 + 300))  # math alphanumerics
    limit = tokens._CLASS_CACHE_LIMIT
    try:
        tokens._CLASS_CACHE_LIMIT = len(tokens._CLASS_CODES) + 10
        assert tokens._raw_cost(rare) == _reference_cost(rare)
        assert len(tokens._CLASS_CODES) <= tokens._CLASS_CACHE_LIMIT
    finally:
        tokens._CLASS_CACHE_LIMIT = limit


@given(st.lists(st.one_of(st.text(), _MIXED), max_size=6))
def test_line_by_line_estimate_equals_the_whole_text_estimate(lines: list[str]) -> None:
    text = "\n".join(lines)
    expected = _margined(_reference_cost(text)) if text else 0
    assert estimate_tokens(text) == expected
