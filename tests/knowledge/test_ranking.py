"""One ranking on both databases: BM25. SQLite has it (FTS5's bm25()); on PostgreSQL the GIN
index picks a pool that twin.domain.knowledge.bm25_rank ranks with the same formula and the
twin's term statistics, kept until its documents change."""

from __future__ import annotations

import random
import sqlite3

from tests.knowledge.conftest import store  # noqa: F401  (a fixture)
from twin.domain.knowledge import TermStats, bm25_rank
from twin.knowledge.analyze import query_terms
from twin.services.knowledge import KnowledgeBase


def test_bm25_rank_is_fts5s_bm25() -> None:
    """FTS5 itself is the oracle: random documents and queries over a small vocabulary (so
    terms repeat and document frequencies differ) rank the same, ties aside."""
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(40)]
    docs = {
        i: " ".join(rng.choices(vocabulary, weights=range(40, 0, -1), k=rng.randint(3, 30)))
        for i in range(1, 81)
    }
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(terms)")
    db.executemany("INSERT INTO t(rowid, terms) VALUES (?, ?)", docs.items())
    df = {w: sum(1 for d in docs.values() if w in d.split()) for w in vocabulary}
    lengths = [len(d.split()) for d in docs.values()]
    stats = TermStats(df, len(docs), sum(lengths) / len(lengths))
    for _ in range(50):
        terms = rng.sample(vocabulary, rng.randint(1, 4))
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = db.execute(
            "SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t), rowid", (match,)
        ).fetchall()
        scores = {rowid: round(score, 9) for rowid, score in rows}
        ours = bm25_rank([(i, docs[i]) for i in sorted(scores)], terms, stats)
        assert [scores[i] for i in ours] == sorted(scores.values()), terms


def test_bm25_rank_without_matches_keeps_the_pool_order() -> None:
    stats = TermStats({"a": 1}, 3, 2.0)
    assert bm25_rank([(3, "x y"), (1, "z"), (2, "q")], ["a"], stats) == [3, 1, 2]
    assert bm25_rank([], ["a"], stats) == []


async def test_a_rare_word_outranks_a_common_one_and_statistics_follow_changes(store):  # noqa: F811
    settings, repo = store
    twin = await repo.ensure_twin("default")
    knowledge = KnowledgeBase(settings=settings.knowledge, repo=repo)
    # "bike" is in eight sections, "tubeless" in one: the rare word decides
    sections = [f"## Service {n}\n\nBike service number {n}." for n in range(8)]
    sections.append("## Kit\n\nTubeless kit.")
    await knowledge.add_text(twin, "shop.md", "# Shop\n\n" + "\n\n".join(sections))

    async def best(question: str) -> str:
        found, _ = await knowledge.search(twin.id, question, 3)
        return found[0].text if found else ""

    assert await best("bike tubeless") == "Tubeless kit."
    assert len(await repo.search_knowledge(twin.id, query_terms("bike tubeless"), 20)) == 9

    # twenty more sections with "tubeless": now "bike" is the rare word — on PostgreSQL only
    # if the term statistics were read again for the new version of the knowledge base
    offers = "\n\n".join(f"## Offer {n}\n\nTubeless offer {n}." for n in range(20))
    await knowledge.add_text(twin, "offers.md", "# Offers\n\n" + offers)
    assert (await best("bike tubeless")).startswith("Bike service number")
    await knowledge.aclose()
