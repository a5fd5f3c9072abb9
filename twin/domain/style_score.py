"""How much the twin's answers read like the owner's: distances between distributions, "AI
tells", and one score from 0 to 100 (`twin style eval`, twin.services.style_eval).

Each answer is the list of messages it was sent as. The *features* are distributions over
categories, so every distance is the same measure with the same range:

* `length`: characters per message, in buckets (≤5, ≤15, ≤40, ≤100, ≤200, ≤400, more);
* `messages`: messages per answer (1, 2, 3, 4 or more);
* `emoji`: messages with an emoji or without;
* `lowercase`: messages that start with a lowercase or an uppercase letter (no cased letter:
  not counted);
* `ending`: how a message ends: `.` `!` `?` `…` `)` (a ")"-smiley), an emoji, or with none;
* `smiley`: messages with a ")"-smiley (more ")" than "(") or without;
* `language`: by script, as the style profile tells it (twin.domain.language): ru, uk,
  und-Latn (Latin letters), other — per message with letters;
* `formality`: per answer, ты-forms only, вы-forms only, both, or neither.

The distance is the Jensen–Shannon distance (the square root of the divergence, base 2): 0 for
the same distribution, 1 for distributions with nothing in common; symmetric and defined where
one side has a category the other lacks (Kullback–Leibler is not). Every feature is measured
for the twin's answers against the owner's reference messages and, as the *ceiling*, for the
owner's real held-out answers against the same reference: even the owner is not at distance 0
from their own other messages, and with few answers the noise alone is visible there.

*AI tells* are rates per message of what a model writes and people rarely do: em dashes, "As an
AI"-style phrases, over-polite openers ("Certainly!", "Great question", "Конечно!", "С
удовольствием"), and exclamation marks; each is compared with the owner's own rate.

The **score**, 0–100:

    score = 100 × (0.5 × S + 0.3 × A + 0.2 × T)

* S, style: the mean over the features of min(1, (1 − d_twin) / (1 − d_ceiling)) — the twin's
  similarity as a share of what the owner's own answers reach (a feature with nothing of the
  owner's to compare with, ceiling 1, is left out);
* A, authorship: min(1, share_twin / share_ceiling) — the share of the twin's answers the
  character n-gram model attributes to the owner, as a share of the owner's own held-out answers
  it attributes to them (twin.services.style_authorship); when the model could not be trained
  (too few messages) or recognises none of the owner's answers, A is left out and S and T are
  weighted 0.5/0.7 and 0.2/0.7;
* T, tells: 1 − min(1, Σ max(0, rate_twin − rate_owner)) over the tells: only what the twin
  does more than the owner counts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twin.domain.style_text import TY, VY, WORD, emoji_clusters, first_cased, language_of

__all__ = [
    "FEATURES",
    "TELLS",
    "Score",
    "distribution",
    "js_distance",
    "overall",
    "tell_rates",
]

Answer = Sequence[str]  # the messages of one answer

_LENGTHS = (5, 15, 40, 100, 200, 400)


def _length(message: str) -> str:
    for limit in _LENGTHS:
        if len(message) <= limit:
            return f"≤{limit}"
    return f">{_LENGTHS[-1]}"


def _smiley(message: str) -> bool:
    return message.count(")") > message.count("(")


def _ending(message: str) -> str:
    text = message.rstrip()
    if not text:
        return "none"
    if _smiley(text) and text.endswith(")"):
        return ")"
    last = text[-1]
    if last in ".!?…":
        return last
    clusters = emoji_clusters(text[-12:])
    if clusters and text.endswith(clusters[-1]):
        return "emoji"
    return "none"


def _lowercase(message: str) -> str | None:
    first = first_cased(message)
    if first is None:
        return None
    return "lower" if first.islower() else "upper"


def _formality(answer: Answer) -> str:
    words = {w.lower() for m in answer for w in WORD.findall(m)}
    ty, vy = bool(words & TY), bool(words & VY)
    return {(True, False): "ты", (False, True): "вы", (True, True): "both"}.get((ty, vy), "neither")


# name → (per message?, what it files a message or an answer under; None: not counted)
FEATURES: dict[str, tuple[bool, Callable]] = {
    "length": (True, _length),
    "messages": (False, lambda answer: str(min(len(answer), 4)) if answer else None),
    "emoji": (True, lambda m: "yes" if emoji_clusters(m) else "no"),
    "lowercase": (True, _lowercase),
    "ending": (True, _ending),
    "smiley": (True, lambda m: "yes" if _smiley(m) else "no"),
    "language": (True, lambda m: language_of(m) or ("other" if WORD.search(m) else None)),
    "formality": (False, _formality),
}


def distribution(feature: str, answers: Sequence[Answer]) -> dict[str, float]:
    """The feature's categories and their shares over these answers ({} with nothing to count)."""
    per_message, classify = FEATURES[feature]
    items = [m for a in answers for m in a] if per_message else list(answers)
    counts = Counter(c for c in map(classify, items) if c is not None)
    total = sum(counts.values())
    return {category: n / total for category, n in counts.items()} if total else {}


def js_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """The Jensen–Shannon distance (base 2) of two distributions, in [0, 1]; 1 when one of
    them is empty and the other not, 0 when both are."""
    if not p or not q:
        return 0.0 if not p and not q else 1.0
    divergence = 0.0
    for key in p.keys() | q.keys():
        a, b = p.get(key, 0.0), q.get(key, 0.0)
        m = (a + b) / 2
        if a:
            divergence += a * math.log2(a / m) / 2
        if b:
            divergence += b * math.log2(b / m) / 2
    return math.sqrt(max(0.0, min(1.0, divergence)))


# -- AI tells ----------------------------------------------------------------------------------

_AI_PHRASE = re.compile(
    r"\bas an ai\b|\bas a (?:large )?language model\b|\bi(?:'m| am) an ai\b|\bai assistant\b"
    r"|\bi(?:'m| am) (?:just )?a (?:virtual|digital) assistant\b"
    r"|как (?:ии|искусственный интеллект|языковая модель)|я (?:—\s*)?(?:ии|языковая модель)\b"
    r"|(?:виртуальный|цифровой) помощник",
    re.IGNORECASE,
)
_POLITE_OPENER = re.compile(
    r"^\s*(?:certainly|of course|absolutely|sure thing|great question|good question"
    r"|i'd be (?:happy|glad) to|i would be (?:happy|glad) to|thank you for (?:your|reaching)"
    r"|thanks for reaching out|hello there|конечно|безусловно|разумеется|отличный вопрос"
    r"|хороший вопрос|с удовольствием|благодарю (?:вас|за)|спасибо за ваш|рад(?:а)? помочь"
    r"|здравствуйте)\b",
    re.IGNORECASE,
)

TELLS: dict[str, Callable[[str], bool]] = {
    "em_dash": lambda m: "—" in m or " – " in m,
    "ai_phrase": lambda m: bool(_AI_PHRASE.search(m)),
    "polite_opener": lambda m: bool(_POLITE_OPENER.search(m)),
    "exclamation": lambda m: "!" in m,
}


def tell_rates(answers: Sequence[Answer]) -> dict[str, float]:
    """Each tell's share of the messages (0 with no message)."""
    messages = [m for a in answers for m in a]
    if not messages:
        return dict.fromkeys(TELLS, 0.0)
    return {name: sum(map(test, messages)) / len(messages) for name, test in TELLS.items()}


# -- the score ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Score:
    value: int  # 0–100
    style: float  # S
    authorship: float | None  # A (None: left out)
    tells: float  # T


def overall(
    distances: dict[str, tuple[float, float]],
    twin_tells: dict[str, float],
    owner_tells: dict[str, float],
    authorship: tuple[float, float] | None,
) -> Score:
    """The score of the module docstring from `distances` {feature: (twin, ceiling)}, the tell
    rates, and `authorship` (twin's share, owner's share), None when not measured."""
    similar = [  # a ceiling of 1 (nothing of the owner's to compare with) says nothing
        min(1.0, (1 - twin) / (1 - ceiling)) for twin, ceiling in distances.values() if ceiling < 1
    ]
    style = sum(similar) / len(similar) if similar else 0.0
    excess = sum(max(0.0, twin_tells[name] - owner_tells.get(name, 0.0)) for name in twin_tells)
    tells = 1 - min(1.0, excess)
    author: float | None = None
    if authorship is not None and authorship[1] > 0:
        author = min(1.0, authorship[0] / authorship[1])
    if author is None:
        value = (0.5 * style + 0.2 * tells) / 0.7
    else:
        value = 0.5 * style + 0.3 * author + 0.2 * tells
    return Score(round(100 * value), style, author, tells)
