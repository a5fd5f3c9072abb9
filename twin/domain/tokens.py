"""Offline, deterministic token estimation (no tokenizer download).

The brain must keep every prompt inside the model's context window, but the real tokenizers
(OpenAI's BPE vocabularies, Gemini's SentencePiece model) are large downloads that differ per
provider. So the budget is enforced against a *conservative estimate*: the text is cut into runs of
one character class and each run is charged what the byte-level BPE tokenizers usually charge for
it, rounded up, with a safety margin on top. The estimate is meant to be at or above the count of
the common tokenizers (cl100k, o200k, Gemini) for English, Russian/Ukrainian, emoji and CJK text;
over-estimating only wastes a little context, under-estimating would overflow it.

Charges (per run of consecutive characters of one class):

* ASCII letters: ``ceil(n / 4)`` — English averages ~4.5 characters per token, and most
  short words are one token.
* Cyrillic letters: ``ceil(n / 2)`` — Cyrillic words split into 2–3 character pieces in
  cl100k (o200k and Gemini do better), so two characters per token is an upper bound in practice.
* other alphabetic letters (Latin with diacritics, Greek, Arabic, Hebrew, Indic, Thai, …):
  one token per character — their UTF-8 is 2–3 bytes per character and vocabularies are thin.
* digits: ``ceil(n / 3)`` — the tokenizers split numbers into groups of at most three digits.
* CJK ideographs, kana, hangul: ``ceil(1.5 * n)`` — common characters are one token, rarer ones
  two or three byte tokens.
* emoji and other symbols: 3 tokens per code point (a 4-byte UTF-8 emoji is 1–3 byte tokens);
  joiners, variation selectors and skin-tone modifiers 1 each.
* punctuation: one token per character.
* whitespace: each line break costs 1; spaces and tabs cost a quarter token each (a space is
  usually merged into the next word, runs of spaces have their own tokens).

The sum is multiplied by ``MARGIN`` (1.1) and rounded up. Chat messages add ``MESSAGE_OVERHEAD``
tokens each for role tags and separators, and a reply adds ``REPLY_PRIMING``.

Two properties the prompt builder relies on: the estimate is *monotone* (adding characters never
lowers it, so :func:`truncate_to_tokens` is a binary search) and *subadditive*
(``estimate(a + b) <= estimate(a) + estimate(b)``, so the sum of the parts' estimates bounds the
estimate of their concatenation).
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = [
    "MARGIN",
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "estimate_message_tokens",
    "estimate_tokens",
    "truncate_to_tokens",
]

MARGIN = 1.1
_MARGIN_TENTHS = 11  # MARGIN in tenths: the margin is applied in integers (`_with_margin`)
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3

# character classes
_ASCII_LETTER = 0
_CYRILLIC = 1
_OTHER_LETTER = 2
_DIGIT = 3
_CJK = 4
_SYMBOL = 5
_PUNCT = 6
_SPACE = 7
_NEWLINE = 8
_MODIFIER = 9

_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility jamo, Katakana ext
    (0x3400, 0x4DBF),  # CJK ext A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half/full-width forms
    (0x20000, 0x3134F),  # CJK ext B–G
)


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _char_class(ch: str) -> int:
    cp = ord(ch)
    if cp < 128:
        if ch.isalpha():
            return _ASCII_LETTER
        if ch.isdigit():
            return _DIGIT
        if ch in "\n\r":
            return _NEWLINE
        if ch.isspace():
            return _SPACE
        return _PUNCT
    if 0x0400 <= cp <= 0x052F:
        return _CYRILLIC
    if cp == 0x200D or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF or cp == 0x20E3:
        return _MODIFIER
    if _is_cjk(cp):
        return _CJK
    if ch in "\u2028\u2029\x85":
        return _NEWLINE
    if ch.isspace():
        return _SPACE
    category = unicodedata.category(ch)
    if category[0] == "L" or category[0] == "M":
        return _OTHER_LETTER
    if category[0] == "N":
        return _DIGIT if ch.isdigit() else _OTHER_LETTER
    if category[0] == "P":
        return _PUNCT
    return _SYMBOL


class _ClassCodes(dict):
    """str.translate table: code point -> its class as one digit character ("0".."9").

    Filled lazily (and only up to _CLASS_CACHE_LIMIT code points, so text full of distinct
    rare characters cannot grow it without bound)."""

    def __missing__(self, cp: int) -> str:
        code = str(_char_class(chr(cp)))
        if len(self) < _CLASS_CACHE_LIMIT:
            self[cp] = code
        return code


_CLASS_CACHE_LIMIT = 1 << 16
_CLASS_CODES = _ClassCodes()
for _cp in range(128):
    _CLASS_CODES[_cp] = str(_char_class(chr(_cp)))
del _cp


def _groups(size: int, cls: int) -> re.Pattern[str]:
    """Matches greedy pieces of at most `size` characters of one class: a run of n characters
    holds ceil(n / size) of them, and no piece crosses into a neighbouring run."""
    return re.compile(f"{cls}{{1,{size}}}")


_ASCII_WORD_PIECES = _groups(4, _ASCII_LETTER)
_CYRILLIC_PIECES = _groups(2, _CYRILLIC)
_DIGIT_PIECES = _groups(3, _DIGIT)
_CJK_PAIRS = _groups(2, _CJK)


def _raw_cost(text: str) -> float:
    """The sum over runs of one character class of what each run is charged (module
    docstring), computed without a Python-level loop over characters or runs: the text is
    translated to one class digit per character, and a run's ceil(n / k) is the number of
    greedy matches of "at most k of this class" in it (the estimator runs on every message
    of every prompt, so it is on the reply pipeline's hot path)."""
    classes = text.translate(_CLASS_CODES)
    count = classes.count
    cjk = count(str(_CJK))
    return (
        len(_ASCII_WORD_PIECES.findall(classes))
        + len(_CYRILLIC_PIECES.findall(classes))
        + count(str(_OTHER_LETTER))
        + len(_DIGIT_PIECES.findall(classes))
        + cjk
        + len(_CJK_PAIRS.findall(classes))  # ceil(1.5 n) = n + ceil(n / 2)
        + 3 * count(str(_SYMBOL))
        + count(str(_PUNCT))
        + count(str(_NEWLINE))
        + count(str(_MODIFIER))
        # spaces: mostly merged into the next word; a quarter token each keeps the sum
        # subadditive
        + count(str(_SPACE)) / 4
    )


@functools.lru_cache(maxsize=16384)
def _line_cost(line: str) -> float:
    return _raw_cost(line)


@functools.lru_cache(maxsize=2048)
def estimate_tokens(text: str) -> int:
    """Conservative token count of `text` (0 for the empty string).

    Computed line by line, each line's cost memoised: every reply re-estimates the same
    history turns and system-prompt lines, wrapped around a per-conversation nonce that makes
    every whole prompt message new. Exact, not an approximation: a line break is a run class
    of its own, charged linearly, so no run crosses one and the text costs the sum of its
    lines plus one per line break.
    """
    if not text:
        return 0
    lines = text.split("\n")
    raw = sum(map(_line_cost, lines)) + (len(lines) - 1)
    return _with_margin(raw)


def _with_margin(raw: float) -> int:
    """ceil(raw × MARGIN), exactly. In floats 50 × 1.1 is 55.00000000000001, so a text whose
    parts' estimates add up could be estimated one token above their sum (not subadditive).
    `raw` is a whole number of quarters (a space costs a quarter), MARGIN a whole number of
    tenths: the product is taken in integers."""
    quarters = round(raw * 4)
    return -(-quarters * _MARGIN_TENTHS // 40)


def estimate_message_tokens(content: str) -> int:
    """Tokens of one chat message: its content plus the role/separator overhead."""
    return estimate_tokens(content) + MESSAGE_OVERHEAD


def truncate_to_tokens(text: str, max_tokens: int, *, keep: str = "end", marker: str = "…") -> str:
    """Cut `text` so that it estimates at most `max_tokens`, keeping its `keep` ("end"/"start").

    The cut side gets `marker` (counted in the budget). Returns "" if not even the marker fits.
    """
    if estimate_tokens(text) <= max_tokens:
        return text
    if keep not in ("end", "start"):
        raise ValueError("keep must be 'end' or 'start'")

    def piece(n: int) -> str:
        if n == 0:
            return ""
        return marker + text[-n:] if keep == "end" else text[:n] + marker

    lo, hi = 0, len(text)  # piece(lo) fits (or lo == 0), piece(hi) is the whole text
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if estimate_tokens(piece(mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid
    return piece(lo)
