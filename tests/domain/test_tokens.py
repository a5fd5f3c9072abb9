"""Offline token estimation: conservative, deterministic, monotone, subadditive."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
