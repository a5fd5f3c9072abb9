"""What the style statistics measure in one message (twin.domain.style counts them): words and
clauses, sentences, the script's language, capitalisation, emoji clusters, the ты/вы pronouns,
length buckets, and whether a message may serve as a representative example."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

from twin.domain.language import detect_language

MAX_EXAMPLE_CHARS = 400
LENGTH_BUCKETS = (15, 40, 100, 200, MAX_EXAMPLE_CHARS)

WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
CLAUSE_SPLIT = re.compile(r"[,.!?;:…\n()]+")
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)")
_PRIVATE = re.compile(
    r"https?://|www\.|\S+@\S+\.\w|\d[\d\s\-]{4,}\d|\d{5,}|t\.me/|@\w{3,}", re.IGNORECASE
)

# fmt: off
TY = frozenset({
    "ты", "тебя", "тебе", "тобой", "тобою", "твой", "твоя", "твоё", "твое", "твои", "твоего",
    "твоей", "твоему", "твоим", "твоих", "твою", "твоими", "тя",
})
VY = frozenset({
    "вы", "вас", "вам", "вами", "ваш", "ваша", "ваше", "ваши", "вашего", "вашей", "вашему",
    "вашим", "ваших", "вашу", "вашими",
})
# fmt: on
# fmt: off
OPENER_STOP = frozenset({
    "я", "и", "а", "в", "во", "на", "не", "что", "это", "то",
    "the", "a", "an", "i", "it", "is", "to", "of", "and", "in", "you", "he", "she", "we", "they",
})
# fmt: on


# -- emoji -------------------------------------------------------------------------------------


def _is_emoji_base(cp: int) -> bool:
    return (
        (0x1F000 <= cp <= 0x1FAFF and not 0x1F3FB <= cp <= 0x1F3FF)
        or 0x2600 <= cp <= 0x27BF
        or 0x2300 <= cp <= 0x23FF
        or 0x2B00 <= cp <= 0x2BFF
        or cp in (0x3030, 0x303D, 0x3297, 0x3299)
    )


def _is_regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def emoji_clusters(text: str) -> list[str]:
    """Emoji in `text`, each with its modifiers (skin tone, VS16, ZWJ sequences, flag pairs)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        cp = ord(text[i])
        if not _is_emoji_base(cp):
            i += 1
            continue
        j = i + 1
        if _is_regional(cp) and j < n and _is_regional(ord(text[j])):
            j += 1
        while j < n:
            nxt = ord(text[j])
            if nxt == 0xFE0F or 0x1F3FB <= nxt <= 0x1F3FF or nxt == 0x20E3:
                j += 1
            elif nxt == 0x200D and j + 1 < n and _is_emoji_base(ord(text[j + 1])):
                j += 2
            else:
                break
        out.append(text[i:j])
        i = j
    return out


# -- per-message features --------------------------------------------------------------------


def sentences(text: str) -> int:
    count = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        count += len(_SENTENCE_END.findall(line))
        if line[-1] not in ".!?…":
            count += 1
    return max(count, 1)


def language_of(text: str) -> str | None:
    """One message's language, by the one heuristic (twin.domain.language): its commonest
    script decides, as long as it has at least half of the letters."""
    return detect_language((text,), max_chars=len(text), min_letters=1, dominance=0.5)


def first_cased(text: str) -> str | None:
    for ch in text:
        if ch.isalpha():
            return ch if ch.upper() != ch.lower() else None
    return None


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def length_bucket(length: int) -> int:
    for index, limit in enumerate(LENGTH_BUCKETS):
        if length <= limit:
            return index
    return len(LENGTH_BUCKETS)


def example_eligible(text: str) -> bool:
    stripped = text.strip()
    return (
        3 <= len(stripped) <= MAX_EXAMPLE_CHARS
        and any(ch.isalpha() for ch in stripped)
        and not _PRIVATE.search(stripped)
    )


def text_hash(text: str) -> str:
    return hashlib.sha256(norm(text).encode("utf-8")).hexdigest()


def phrases(words: list[str]) -> list[str]:
    if not words:
        return []
    out = [words[0]]
    if len(words) >= 2:
        out.append(f"{words[0]} {words[1]}")
    return out


def percentile(counts: Counter[int], q: float) -> int:
    """Nearest-rank percentile of a histogram {value: count}."""
    total = sum(counts.values())
    if not total:
        return 0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)  # pragma: no cover - unreachable
