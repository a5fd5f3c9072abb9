"""Synonyms: words a customer asks with that the owner's documents do not use ("pick up" for
"collect", "second-hand" for "used", "машина" for "автомобиль"), expanded at query time, as
Elasticsearch's and Solr's search-time synonym filters do — the index is untouched, so the list
can change without re-adding a document.

The format is Solr's equivalence lines, the one the field knows: `a, b, c` per line, `#` starts
a comment, a phrase of several words is allowed. Each word is matched by its Snowball stem
(twin.knowledge.analyze), so a line matches any word form with the same stem: "hours" matches
`hour`, "машине" matches `машина`; a function word ("how", "где") matches only itself, so
"почти" never meets "почта". When a question holds every word of one phrase of a line, in
order, the index terms of the line's other phrases are added to the question's terms.

twin ships a general list for small businesses' customers (twin/knowledge/synonyms.txt:
hours, prices, booking, repairs, delivery, refunds, payment… in Russian and English);
`[knowledge] synonyms_file` adds the owner's own lines, `builtin_synonyms = false` drops the
built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from twin.knowledge.analyze import STOPWORDS, stem, terms_of, words

__all__ = ["Synonyms", "builtin_lines", "load_synonyms"]


def _key(word: str) -> str:
    """What a word matches on: its stem, or itself for a function word."""
    return word if word in STOPWORDS else stem(word)


@dataclass(frozen=True, slots=True)
class _Phrase:
    keys: tuple[str, ...]  # each word's key: a question's word matches the same key
    terms: tuple[str, ...]  # its content words' terms, added when another phrase matches


class Synonyms:
    """Equivalence groups of phrases; `expand` gives the terms a question's words imply."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._groups: list[tuple[_Phrase, ...]] = []
        self._by_first: dict[str, list[tuple[int, _Phrase]]] = {}
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            phrases = []
            for part in line.split(","):
                tokens = words(part)
                if tokens:
                    keys = tuple(_key(word) for word in tokens)
                    content = [terms_of(w) for w in tokens if w not in STOPWORDS and len(w) > 1]
                    terms = tuple(dict.fromkeys(t for key in content for t in key))
                    phrases.append(_Phrase(keys, terms))
            if len(phrases) < 2:
                continue
            group = len(self._groups)
            self._groups.append(tuple(phrases))
            for phrase in phrases:
                self._by_first.setdefault(phrase.keys[0], []).append((group, phrase))

    def __len__(self) -> int:
        return len(self._groups)

    def expand(self, question_words: Sequence[str]) -> list[str]:
        """The terms the groups add for these (lowercased) words, in order, without repeats
        and without the terms of the phrases that matched."""
        keys = [_key(word) for word in question_words]
        matched: dict[int, set[_Phrase]] = {}
        for i, key in enumerate(keys):
            for group, phrase in self._by_first.get(key, ()):
                if tuple(keys[i : i + len(phrase.keys)]) == phrase.keys:
                    matched.setdefault(group, set()).add(phrase)
        added: dict[str, None] = {}
        for group, hits in matched.items():
            for phrase in self._groups[group]:
                if phrase not in hits:
                    added.update(dict.fromkeys(phrase.terms))
        return list(added)


def builtin_lines() -> list[str]:
    text = resources.files("twin.knowledge").joinpath("synonyms.txt").read_text(encoding="utf-8")
    return text.splitlines()


def load_synonyms(*, builtin: bool, path: Path | None) -> Synonyms:
    """The configured synonyms: the built-in list (unless turned off) and the owner's file."""
    lines = builtin_lines() if builtin else []
    if path is not None:
        lines += path.read_text(encoding="utf-8").splitlines()
    return Synonyms(lines)
