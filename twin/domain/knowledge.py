"""What a twin knows, as the prompt sees it: passages of its knowledge base, the fusion of
rankings, the passages chosen within a token budget, the question retrieval is asked, and the
limits of a knowledge base. Pure (standard library only)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from twin.domain.conversation import Turn

__all__ = [
    "Passage",
    "TermStats",
    "bm25_rank",
    "query_text",
    "reciprocal_rank_fusion",
    "select_passages",
]

RRF_K = 60  # the constant of Cormack et al. (2009): ranks past ~60 barely matter


@dataclass(frozen=True, slots=True)
class Passage:
    """One chunk of the knowledge base as given to the model: `label` ("K1"…) is how the
    prompt names it and how the model's `sources` cite it."""

    chunk_id: int
    document: str
    heading: str
    text: str
    tokens: int
    label: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk_id,
            "document": self.document,
            "heading": self.heading,
            "label": self.label,
        }


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[int]:
    """Ids ranked by the sum of 1 / (k + rank) over the rankings they appear in (rank from 1);
    ties keep the order of first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores, key=lambda item: (-scores[item], order[item]))


@dataclass(frozen=True, slots=True)
class TermStats:
    """What BM25 needs of a whole collection: how many chunks hold each term, how many chunks
    there are, and their mean length in terms."""

    df: Mapping[str, int]
    chunks: int
    mean_length: float


BM25_K1, BM25_B = 1.2, 0.75  # SQLite FTS5's bm25() defaults


def bm25_rank(
    candidates: Sequence[tuple[int, str]], terms: Sequence[str], stats: TermStats
) -> list[int]:
    """Candidates (id, their stored terms separated by spaces) ranked by BM25 for the query
    `terms` — FTS5's formula exactly (idf = ln((N − n + 0.5) / (n + 0.5)), at least 1e-6), so a
    collection ranks the same on PostgreSQL as on SQLite; ties keep the candidates' order."""
    n_docs = max(stats.chunks, 1)
    mean = stats.mean_length or 1.0
    query = set(terms)
    idf = {}
    for term in query:
        n = stats.df.get(term, 0)
        idf[term] = max(math.log((n_docs - n + 0.5) / (n + 0.5)), 1e-6)
    scored = []
    for position, (chunk_id, text) in enumerate(candidates):
        words = text.split()
        counts = Counter(word for word in words if word in query)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(words) / mean)
        score = sum(idf[t] * f * (BM25_K1 + 1) / (f + norm) for t, f in counts.items())
        scored.append((-score, position, chunk_id))
    return [chunk_id for _, _, chunk_id in sorted(scored)]


def select_passages(ranked: Sequence[Passage], budget_tokens: int) -> list[Passage]:
    """The best passages that fit `budget_tokens` together (best first; one that does not fit
    is skipped for a smaller one after it), labelled K1, K2, … in that order."""
    chosen: list[Passage] = []
    used = 0
    for passage in ranked:
        cost = passage.tokens + 8  # its label line and separator
        if used + cost > budget_tokens:
            continue
        used += cost
        chosen.append(passage)
    return [
        Passage(p.chunk_id, p.document, p.heading, p.text, p.tokens, f"K{i}")
        for i, p in enumerate(chosen, start=1)
    ]


def query_text(turns: Sequence[Turn], summary: str | None, *, last_turns: int = 3) -> str:
    """What retrieval is asked: the summary, then the contact's latest `last_turns` turns,
    oldest first (the newest words last: query terms keep those when there are too many)."""
    recent = [turn.text for turn in turns if turn.role == "contact"][-last_turns:]
    parts = [summary or "", *recent]
    return "\n".join(part for part in parts if part.strip())
