"""How the owner writes: statistics over the owner's own messages, and their rendering for a prompt.

Everything is counted in a `StyleAccumulator`, whose state is plain counters: messages can be
added batch by batch, the state saved with `to_dict()` and restored with `from_dict()` (so
`twin style build` can resume after an interruption), and two accumulators can be `merge()`d.
`profile()` turns the counters into a `StyleProfile`; `compute_style(messages)` does it in one go.
What is measured in one message (words, clauses, script, emoji…) is twin.domain.style_text.

Choices worth knowing:

* Languages are detected by script only: Cyrillic letters → "ru", or "uk" when the message has
  one of і ї є ґ; ASCII/Latin letters → "en". Proportions are over messages that have letters.
* Formality (Russian/Ukrainian) is counted per chat from the owner's own pronouns: ты-forms vs
  вы-forms. Any ты with at most half as many вы → "informal"; вы-forms without ты (two or more, or
  a capitalised "Вы") → "formal"; anything else → "unknown" ("вы" alone may be a plural).
* ")"-smileys are messages with more ")" than "(" — the Russian habit of "ок)" and "спасибо))".
* Greetings and sign-offs are the most common first/last words (or two-word phrases) of a
  message's first/last clause (clauses end at punctuation and line breaks);
  a phrase must recur, and once messages from two or more chats have been seen it must occur in at
  least two chats, so a contact's name or a one-chat topic never becomes a "greeting".
* Representative examples are chosen deterministically, independent of input order: per chat and
  length bucket the message with the smallest SHA-256 is a candidate; the profile picks round-robin
  across length buckets, preferring chats not yet used, skipping duplicates and anything that looks
  private (links, e-mail addresses, long numbers).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from twin.domain.conversation import ChatId, Formality, StyleExample, StyleProfile
from twin.domain.language import LATIN
from twin.domain.style_text import (
    CLAUSE_SPLIT,
    OPENER_STOP,
    TY,
    VY,
    WORD,
    emoji_clusters,
    example_eligible,
    first_cased,
    language_of,
    length_bucket,
    norm,
    percentile,
    phrases,
    sentences,
    text_hash,
)
from twin.domain.timing import TimingAccumulator

__all__ = [
    "OwnerMessage",
    "StyleAccumulator",
    "compute_style",
    "emoji_clusters",
    "render_style",
]

STATE_VERSION = 1
MAX_PHRASES = 2000


@dataclass(frozen=True, slots=True)
class OwnerMessage:
    """One message the owner wrote (input to the style statistics)."""

    text: str
    chat_id: ChatId
    at: datetime
    reply_to_text: str | None = None


# -- the accumulator --------------------------------------------------------------------------

_RATE_KEYS = (
    "multiline",
    "cap_eligible",
    "capitalized",
    "trailing_period",
    "exclamation",
    "question",
    "ellipsis",
    "paren_smiley",
    "emoji_messages",
    "sentences",
)


class StyleAccumulator:
    """Mergeable, serialisable counters over owner messages (see the module docstring)."""

    def __init__(self) -> None:
        self.count = 0
        self.lengths: Counter[int] = Counter()
        self.counters: Counter[str] = Counter()
        self.emoji: Counter[str] = Counter()
        self.languages: Counter[str] = Counter()
        self.openers: Counter[str] = Counter()
        self.closers: Counter[str] = Counter()
        # phrase -> up to two distinct chats it was seen in
        self.opener_chats: dict[str, list[ChatId]] = {}
        self.closer_chats: dict[str, list[ChatId]] = {}
        self.formality: dict[ChatId, list[int]] = {}  # chat -> [ty, vy, capital Вы]
        self.chats_seen: list[ChatId] = []  # the first two distinct chats
        # (chat, bucket) -> (sha256, text): the smallest-hash message per chat and length bucket
        self.candidates: dict[tuple[ChatId, int], tuple[str, str]] = {}
        self.cursor: Any = None  # free slot for the caller's resume point (JSON-serialisable)
        self.timing = TimingAccumulator()  # reply latencies and typing speed (domain.timing)

    # -- adding ------------------------------------------------------------------------------
    def add(self, messages: Iterable[OwnerMessage]) -> StyleAccumulator:
        for message in messages:
            self._add_one(message)
        return self

    def _add_one(self, message: OwnerMessage) -> None:
        text = message.text.strip()
        if not text:
            return
        self.count += 1
        self.lengths[len(text)] += 1
        c = self.counters
        c["sentences"] += sentences(text)
        if "\n" in text:
            c["multiline"] += 1
        first = first_cased(text)
        if first is not None:
            c["cap_eligible"] += 1
            if first.isupper():
                c["capitalized"] += 1
        if text.endswith(".") and not text.endswith(".."):
            c["trailing_period"] += 1
        if "!" in text:
            c["exclamation"] += 1
        if "?" in text:
            c["question"] += 1
        if "…" in text or "..." in text:
            c["ellipsis"] += 1
        if text.count(")") > text.count("("):
            c["paren_smiley"] += 1
        clusters = emoji_clusters(text)
        if clusters:
            c["emoji_messages"] += 1
            self.emoji.update(clusters)
        language = language_of(text)
        if language is not None:
            self.languages[language] += 1

        self._note_chat(message.chat_id)
        clauses = [c for c in CLAUSE_SPLIT.split(text) if WORD.search(c)]
        if clauses:
            head = [w.lower() for w in WORD.findall(clauses[0])]
            tail = [w.lower() for w in WORD.findall(clauses[-1])]
            # an opener must really open the message ("2 apples" has no opener)
            if text.lstrip().lower().startswith(head[0]):
                for phrase in phrases(head[:2]):
                    self._count_phrase(self.openers, self.opener_chats, phrase, message.chat_id)
            for phrase in dict.fromkeys([tail[-1], " ".join(tail[-2:])]):
                self._count_phrase(self.closers, self.closer_chats, phrase, message.chat_id)

        words = [w.lower() for w in WORD.findall(text)]
        ty = sum(1 for w in words if w in TY)
        vy = sum(1 for w in words if w in VY)
        if ty or vy:
            capital_vy = sum(
                1 for w in WORD.findall(text)[1:] if w[:1] == "В" and w.lower() in VY
            )
            slot = self.formality.setdefault(message.chat_id, [0, 0, 0])
            slot[0] += ty
            slot[1] += vy
            slot[2] += capital_vy

        if example_eligible(text):
            key = (message.chat_id, length_bucket(len(text)))
            digest = text_hash(text)
            held = self.candidates.get(key)
            if held is None or digest < held[0]:
                self.candidates[key] = (digest, text)

    def _note_chat(self, chat_id: ChatId) -> None:
        if len(self.chats_seen) < 2 and chat_id not in self.chats_seen:
            self.chats_seen.append(chat_id)

    @staticmethod
    def _count_phrase(
        counter: Counter[str], chats: dict[str, list[ChatId]], phrase: str, chat_id: ChatId
    ) -> None:
        counter[phrase] += 1
        seen = chats.setdefault(phrase, [])
        if len(seen) < 2 and chat_id not in seen:
            seen.append(chat_id)

    # -- merging and persistence ---------------------------------------------------------------
    def merge(self, other: StyleAccumulator) -> StyleAccumulator:
        """Add `other`'s counts into this accumulator (as if its messages were added here)."""
        self.count += other.count
        self.lengths.update(other.lengths)
        self.counters.update(other.counters)
        self.emoji.update(other.emoji)
        self.languages.update(other.languages)
        self.openers.update(other.openers)
        self.closers.update(other.closers)
        for mine, theirs in (
            (self.opener_chats, other.opener_chats),
            (self.closer_chats, other.closer_chats),
        ):
            for phrase, chats in theirs.items():
                seen = mine.setdefault(phrase, [])
                for chat in chats:
                    if len(seen) < 2 and chat not in seen:
                        seen.append(chat)
        for chat_id, (ty, vy, cap) in other.formality.items():
            slot = self.formality.setdefault(chat_id, [0, 0, 0])
            slot[0] += ty
            slot[1] += vy
            slot[2] += cap
        for chat_id in other.chats_seen:
            self._note_chat(chat_id)
        for key, held in other.candidates.items():
            mine_held = self.candidates.get(key)
            if mine_held is None or held[0] < mine_held[0]:
                self.candidates[key] = held
        self.timing.merge(other.timing)
        return self

    def _prune(self) -> None:
        for counter, chats in (
            (self.openers, self.opener_chats),
            (self.closers, self.closer_chats),
        ):
            if len(counter) > MAX_PHRASES:
                keep = dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_PHRASES])
                counter.clear()
                counter.update(keep)
                for phrase in list(chats):
                    if phrase not in keep:
                        del chats[phrase]
        if len(self.emoji) > MAX_PHRASES:
            keep = dict(sorted(self.emoji.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_PHRASES])
            self.emoji = Counter(keep)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (chat ids keep their int/str type)."""
        self._prune()
        return {
            "version": STATE_VERSION,
            "count": self.count,
            "lengths": [[length, n] for length, n in sorted(self.lengths.items())],
            "counters": {key: self.counters[key] for key in _RATE_KEYS},
            "emoji": dict(self.emoji),
            "languages": dict(self.languages),
            "openers": [[p, n, self.opener_chats.get(p, [])] for p, n in self.openers.items()],
            "closers": [[p, n, self.closer_chats.get(p, [])] for p, n in self.closers.items()],
            "formality": [[chat, *counts] for chat, counts in self.formality.items()],
            "chats_seen": list(self.chats_seen),
            "candidates": [
                [chat, bucket, digest, text]
                for (chat, bucket), (digest, text) in self.candidates.items()
            ],
            "cursor": self.cursor,
            "timing": self.timing.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StyleAccumulator:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported style state version {data.get('version')!r}")
        acc = cls()
        acc.count = int(data["count"])
        acc.lengths = Counter({int(length): int(n) for length, n in data["lengths"]})
        acc.counters = Counter({k: int(v) for k, v in data["counters"].items()})
        acc.emoji = Counter({k: int(v) for k, v in data["emoji"].items()})
        acc.languages = Counter({k: int(v) for k, v in data["languages"].items()})
        for counter, chats, rows in (
            (acc.openers, acc.opener_chats, data["openers"]),
            (acc.closers, acc.closer_chats, data["closers"]),
        ):
            for phrase, n, seen in rows:
                counter[phrase] = int(n)
                chats[phrase] = list(seen)
        acc.formality = {row[0]: [int(x) for x in row[1:4]] for row in data["formality"]}
        acc.chats_seen = list(data["chats_seen"])
        acc.candidates = {
            (chat, int(bucket)): (digest, text) for chat, bucket, digest, text in data["candidates"]
        }
        acc.cursor = data.get("cursor")
        if "timing" in data:  # absent from profiles built before the timing was learned
            acc.timing = TimingAccumulator.from_dict(data["timing"])
        return acc

    # -- the profile -------------------------------------------------------------------------
    def profile(self, *, max_examples: int = 8, top: int = 5) -> StyleProfile:
        n = self.count
        if not n:
            return StyleProfile()
        c = self.counters

        def rate(key: str, of: int = n) -> float:
            return round(c[key] / of, 3) if of else 0.0

        lang_total = sum(self.languages.values())
        languages = tuple(
            (lang, round(count / lang_total, 3))
            for lang, count in sorted(self.languages.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        top_emoji = tuple(e for e, _ in sorted(self.emoji.items(), key=lambda kv: (-kv[1], kv[0])))
        return StyleProfile(
            message_count=n,
            length_median=percentile(self.lengths, 0.5),
            length_p90=percentile(self.lengths, 0.9),
            sentences_per_message=round(c["sentences"] / n, 2),
            multiline_rate=rate("multiline"),
            capitalized_rate=rate("capitalized", c["cap_eligible"]),
            trailing_period_rate=rate("trailing_period"),
            exclamation_rate=rate("exclamation"),
            question_rate=rate("question"),
            ellipsis_rate=rate("ellipsis"),
            paren_smiley_rate=rate("paren_smiley"),
            emoji_rate=rate("emoji_messages"),
            top_emoji=top_emoji[:top],
            languages=languages,
            greetings=self._top_phrases(self.openers, self.opener_chats, top, opener=True),
            signoffs=self._top_phrases(self.closers, self.closer_chats, top, opener=False),
            formality={chat: _formality(*counts) for chat, counts in self.formality.items()},
            examples=self._examples(max_examples),
        )

    def _top_phrases(
        self, counter: Counter[str], chats: dict[str, list[ChatId]], top: int, *, opener: bool
    ) -> tuple[str, ...]:
        min_count = max(3, math.ceil(0.02 * self.count))
        need_chats = 2 if len(self.chats_seen) >= 2 else 1

        def ok(phrase: str) -> bool:
            return counter[phrase] >= min_count and len(chats.get(phrase, ())) >= need_chats

        chosen: dict[str, int] = {}
        for word in sorted(p for p in counter if " " not in p and ok(p)):
            if word in OPENER_STOP:
                continue
            best, best_count = word, 0
            for phrase, count in sorted(counter.items()):
                if " " not in phrase or not ok(phrase):
                    continue
                parts = phrase.split(" ")
                if (parts[0] if opener else parts[-1]) != word:
                    continue
                if count >= 0.6 * counter[word] and count > best_count:
                    best, best_count = phrase, count
            chosen[best] = max(chosen.get(best, 0), counter[word])
        ranked = sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))
        return tuple(phrase for phrase, _ in ranked[:top])

    def _examples(self, limit: int) -> tuple[StyleExample, ...]:
        if limit <= 0:
            return ()
        buckets: dict[int, list[tuple[str, ChatId, str]]] = {}
        for (chat, bucket), (digest, text) in self.candidates.items():
            buckets.setdefault(bucket, []).append((digest, chat, text))
        for entries in buckets.values():
            entries.sort(key=lambda e: (e[0], str(e[1])))
        chosen: list[StyleExample] = []
        used_chats: set[ChatId] = set()
        seen_texts: set[str] = set()
        order = sorted(buckets)
        while len(chosen) < limit and any(buckets.values()):
            for bucket in order:
                entries = buckets[bucket]
                if not entries or len(chosen) >= limit:
                    continue
                # prefer a chat not used yet, else the next candidate in hash order
                index = next((i for i, e in enumerate(entries) if e[1] not in used_chats), 0)
                _, chat, text = entries.pop(index)
                key = norm(text)
                if key in seen_texts:
                    continue
                seen_texts.add(key)
                used_chats.add(chat)
                chosen.append(StyleExample(chat_id=chat, text=text))
        return tuple(chosen)


def _formality(ty: int, vy: int, capital_vy: int) -> Formality:
    if ty >= 1 and ty >= 2 * vy:
        return "informal"
    if ty == 0 and (vy >= 2 or capital_vy >= 1):
        return "formal"
    return "unknown"


def compute_style(messages: Iterable[OwnerMessage], *, max_examples: int = 8) -> StyleProfile:
    """The owner's style profile from their messages (see `StyleAccumulator`)."""
    return StyleAccumulator().add(messages).profile(max_examples=max_examples)


# -- rendering ----------------------------------------------------------------------------------

_LANGUAGE_NAMES = {
    "ru": "Russian",
    "uk": "Ukrainian",
    "be": "Belarusian",
    "sr": "Serbian",
    "en": "English",  # profiles built before the one heuristic (twin.domain.language)
    LATIN: "a Latin-script language",
    "el": "Greek",
    "hy": "Armenian",
    "he": "Hebrew",
    "ar": "Arabic",
    "fa": "Persian",
    "hi": "Hindi",
    "th": "Thai",
    "ka": "Georgian",
    "ko": "Korean",
    "ja": "Japanese",
    "zh": "Chinese",
}


def _pct(rate: float) -> str:
    return f"{round(rate * 100)}%"


def render_style(profile: StyleProfile, detail: Literal["full", "brief"] = "full") -> str:
    """Style guidance for the system prompt; "brief" keeps only the most important lines.

    Pass `profile.for_chat(chat_id)` so only that chat's formality and examples are shown.
    """
    if profile.message_count == 0:
        return ""
    lines = ["How the owner writes (imitate the manner, never copy the examples):"]
    lines.append(
        f"- Length: usually about {profile.length_median} characters, rarely over "
        f"{profile.length_p90}; about {profile.sentences_per_message:g} sentence(s) per message."
    )
    if profile.capitalized_rate < 0.35:
        lines.append(
            f"- Usually starts messages with a lowercase letter "
            f"(capital only {_pct(profile.capitalized_rate)} of the time)."
        )
    elif profile.capitalized_rate > 0.8:
        lines.append("- Starts messages with a capital letter.")
    if profile.trailing_period_rate < 0.2:
        lines.append("- Almost never ends a message with a period.")
    elif profile.trailing_period_rate > 0.6:
        lines.append("- Usually ends messages with a period.")
    if profile.emoji_rate >= 0.02:
        favourites = " ".join(profile.top_emoji[:3])
        lines.append(
            f"- Emoji in {_pct(profile.emoji_rate)} of messages"
            + (f", favourites: {favourites}." if favourites else ".")
        )
    else:
        lines.append("- Rarely uses emoji.")
    if profile.languages:
        langs = ", ".join(
            f"{_LANGUAGE_NAMES.get(code, code)} {_pct(share)}" for code, share in profile.languages
        )
        lines.append(f"- Writes in: {langs}.")
    if len(profile.formality) == 1:  # a profile narrowed with for_chat()
        formality = next(iter(profile.formality.values()))
        if formality == "informal":
            lines.append("- With this contact: informal, addresses them as «ты».")
        elif formality == "formal":
            lines.append("- With this contact: formal, addresses them as «вы».")
    if detail == "brief":
        return "\n".join(lines)

    if profile.multiline_rate >= 0.2:
        lines.append(
            f"- Often breaks a message into several lines ({_pct(profile.multiline_rate)})."
        )
    marks = []
    if profile.question_rate >= 0.02:
        marks.append(f'"?" in {_pct(profile.question_rate)}')
    if profile.exclamation_rate >= 0.02:
        marks.append(f'"!" in {_pct(profile.exclamation_rate)}')
    if profile.ellipsis_rate >= 0.02:
        marks.append(f'"…" in {_pct(profile.ellipsis_rate)}')
    if profile.paren_smiley_rate >= 0.02:
        marks.append(f'")" smileys in {_pct(profile.paren_smiley_rate)}')
    if marks:
        lines.append("- Punctuation: " + ", ".join(marks) + " of messages.")
    if profile.greetings:
        lines.append("- Typical openers: " + ", ".join(f'"{g}"' for g in profile.greetings) + ".")
    if profile.signoffs:
        lines.append("- Typical endings: " + ", ".join(f'"{s}"' for s in profile.signoffs) + ".")
    if profile.examples:
        lines.append("Examples of the owner's messages in this chat:")
        lines.extend(f"- «{example.text}»" for example in profile.examples)
    return "\n".join(lines)
