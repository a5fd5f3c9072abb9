"""The one language heuristic (pure, stdlib only): which language a text is written in, as far
as its script tells.

A script is mapped to a language only where the script nearly identifies it (Cyrillic with
Ukrainian letters → uk, kana → ja, …). Latin-script text (English? German? Spanish?) is
`LATIN` ("und-Latn": BCP 47 for "undetermined language, Latin script"), never a guessed "en".
Its users: the transcription hint (a wrong hint is worse than none, so `LATIN` gives no hint)
and the style profile (the share of the owner's messages per language).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

_AUTO = {"", "auto", "detect", "none"}
LATIN = "und-Latn"

# (first, last, script) code point ranges
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x005A, "latin"),
    (0x0061, 0x007A, "latin"),
    (0x00C0, 0x024F, "latin"),
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0530, 0x058F, "armenian"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"),
    (0x0750, 0x077F, "arabic"),
    (0x0900, 0x097F, "devanagari"),
    (0x0E00, 0x0E7F, "thai"),
    (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"),
    (0x3040, 0x30FF, "kana"),
    (0x3130, 0x318F, "hangul"),
    (0x4E00, 0x9FFF, "han"),
    (0xAC00, 0xD7AF, "hangul"),
)

_SCRIPT_LANGUAGE = {
    "greek": "el",
    "armenian": "hy",
    "hebrew": "he",
    "devanagari": "hi",
    "thai": "th",
    "georgian": "ka",
    "hangul": "ko",
}

_UKRAINIAN = set("іїєґІЇЄҐ")
_BELARUSIAN = set("ўЎ")
_SERBIAN = set("ђјљњћџЂЈЉЊЋЏ")
_PERSIAN = set("پچژگ")


def _script(char: str) -> str | None:
    code = ord(char)
    for first, last, script in _RANGES:
        if first <= code <= last:
            return script
    return None


def detect_language(
    texts: Iterable[str], *, max_chars: int = 2000, min_letters: int = 3, dominance: float = 0.6
) -> str | None:
    """The language of `texts` (most recent first): an ISO 639-1 code, `LATIN`, or None when
    there are fewer than `min_letters` letters or no script has `dominance` of them."""
    scripts: Counter[str] = Counter()
    seen: set[str] = set()
    budget = max_chars
    for text in texts:
        for char in text[:budget]:
            script = _script(char)
            if script is not None:
                scripts[script] += 1
                seen.add(char)
        budget -= len(text)
        if budget <= 0:
            break
    letters = sum(scripts.values())
    if letters < min_letters:
        return None
    if scripts["kana"] and scripts["kana"] + scripts["han"] >= 0.6 * letters:
        return "ja"
    script, count = scripts.most_common(1)[0]
    if count < dominance * letters:
        return None
    if script == "latin":
        return LATIN
    if script == "cyrillic":
        if seen & _UKRAINIAN:
            return "uk"
        if seen & _BELARUSIAN:
            return "be"
        if seen & _SERBIAN:
            return "sr"
        return "ru"
    if script == "arabic":
        return "fa" if seen & _PERSIAN else "ar"
    if script == "han":
        return "zh"
    return _SCRIPT_LANGUAGE.get(script)


def language_hint(configured: str | None, recent_texts: Iterable[str] = ()) -> str | None:
    """The `language` to send with a transcription: the configured one ([stt] language), or,
    when that is unset/"auto", a guess from the chat's recent text (Cyrillic → "ru", …)."""
    if configured is not None and configured.strip().lower() not in _AUTO:
        return configured.strip().lower()
    detected = detect_language(recent_texts)
    return None if detected == LATIN else detected
