from __future__ import annotations

import pytest

from twin.domain.language import LATIN, detect_language, language_hint


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["Привет! Как дела?"], "ru"),
        (["Привіт, як справи? Що нового?"], "uk"),
        (["Γεια σου, τι κάνεις;"], "el"),
        (["שלום, מה שלומך?"], "he"),
        (["مرحبا كيف حالك"], "ar"),
        (["こんにちは、元気ですか"], "ja"),
        (["你好，你今天怎么样"], "zh"),
        (["안녕하세요 잘 지내요?"], "ko"),
        (["Hello, how are you?"], LATIN),
        (["Hallo, wie geht es dir?"], LATIN),  # never a guessed "en"
        (["ok", "👍"], None),
        ([], None),
        (["see you at 10", "ну давай, до встречи завтра утром"], "ru"),
    ],
)
def test_detects_language_from_script(texts: list[str], expected: str | None) -> None:
    assert detect_language(texts) == expected


def test_mixed_script_without_a_clear_majority_gives_no_hint() -> None:
    assert detect_language(["hello friend", "привет друг"]) is None


def test_configured_language_wins_and_auto_means_detect() -> None:
    assert language_hint("EN", ["Привет"]) == "en"
    assert language_hint(None, ["Привет, друг"]) == "ru"
    assert language_hint("auto", ["Привет, друг"]) == "ru"
    assert language_hint("", []) is None
    assert language_hint(None, ["Hello, how are you?"]) is None  # Latin script: no hint


def test_one_message_by_its_commonest_script() -> None:
    assert detect_language(["ok"], min_letters=1, dominance=0.5) == LATIN
    assert detect_language(["см. https://example.com"], min_letters=1, dominance=0.5) == LATIN
    assert detect_language(["привіт"], min_letters=1, dominance=0.5) == "uk"
