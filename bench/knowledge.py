"""Knowledge-base retrieval: quality on the labelled set and latency at scale, on SQLite and
PostgreSQL.

    python bench/knowledge.py [--filler 10000] [--postgres URL | --no-postgres]

Quality: the labelled set of tests/knowledge/data (a made-up bike workshop, documents in
Russian and English, each question labelled with a substring of the passage that answers it),
and two held-out sets (heldout.json and heldout2.json: 60 more questions each, written
afterwards by someone who saw only the documents — not the labelled questions, the analyzer or
the synonym list; heldout2 was written after the analyzer and the synonym list were final, and
is the honest figure of how they generalize)
are loaded into a twin's knowledge base through `KnowledgeBase.add_file`, with embeddings from
the deterministic fake embedding server (tests/providers/embeddings_fake.py, in this process).
For every question it prints recall@1, recall@5 and MRR (over the first 20) of the lexical
ranking (BM25 over Snowball terms: FTS5's bm25(), or on PostgreSQL a GIN-index pool re-ranked
with the same formula), the semantic ranking (cosine over
the stored vectors) and their reciprocal-rank fusion — what `KnowledgeBase.search` gives the
prompt.

Lexical is given with the configured synonyms (the built-in list, twin.knowledge.synonyms) and
without them ("no-synonym").

Latency: the same questions through `KnowledgeBase.search` (lexical only: analysis, synonyms,
the database's full-text query, the passages' read), with and without synonyms, first on the
labelled set alone (the baseline: the plain questions there), then with `--filler` irrelevant
chunks added (tests/knowledge/filler.py); p50 and p95 in ms and the ratio to the baseline, in
the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from tests.knowledge.filler import filler_documents
from tests.providers.embeddings_fake import openai_embeddings_routes
from tests.providers.openai_fake import FakeOpenAI
from twin.brain.embeddings import OpenAIEmbedder
from twin.config import load_settings
from twin.db import migrate
from twin.db.engine import database
from twin.knowledge.analyze import query_terms
from twin.knowledge.vectors import VectorIndex
from twin.services.knowledge import KnowledgeBase

DATA = Path(__file__).resolve().parents[1] / "tests" / "knowledge" / "data"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/twin_bench_knowledge"
DEPTH = 20


def metrics(ranks: list[int | None]) -> tuple[float, float, float]:
    n = len(ranks)
    r1 = sum(1 for r in ranks if r is not None and r <= 1) / n
    r5 = sum(1 for r in ranks if r is not None and r <= 5) / n
    mrr = sum(1 / r for r in ranks if r is not None) / n
    return r1, r5, mrr


async def fresh_postgres(url: str) -> bool:
    """Recreate the bench database; False when PostgreSQL is not reachable."""
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0].replace("postgresql+asyncpg", "postgresql") + "/postgres"
    try:
        connection = await asyncpg.connect(admin, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return True


async def timed(call: Callable, questions: list[dict]) -> list[float]:
    samples = []
    for _ in range(3):
        for q in questions:
            start = time.perf_counter()
            await call(q)
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def run_backend(label: str, url: str, tmp: Path, fake: FakeOpenAI, filler: int) -> None:
    await migrate.upgrade(url)
    settings = load_settings(
        None,
        storage={"url": url, "data_dir": tmp},
        security={"secret_key": "bench-knowledge-secret-0123456789"},
    )
    questions = json.loads((DATA / "questions.json").read_text(encoding="utf-8"))
    heldout = json.loads((DATA / "heldout.json").read_text(encoding="utf-8"))
    heldout2 = json.loads((DATA / "heldout2.json").read_text(encoding="utf-8"))
    embedder = OpenAIEmbedder(
        model="fake-embedding", api_key="k", base_url=fake.base_url + "/v1", batch=256
    )
    async with database(settings) as db:
        repo = db.repo
        twin = await repo.ensure_twin("default")
        knowledge = KnowledgeBase(settings=settings.knowledge, repo=repo, embedder=embedder)
        for lang in ("ru", "en"):
            for path in sorted((DATA / lang).iterdir()):
                await knowledge.add_file(twin, f"{lang}-{path.name}", path.read_bytes())
        docs = await repo.knowledge_documents(twin.id)
        chunks = sum(d.chunks for d in docs)
        index = VectorIndex(await repo.knowledge_vectors(twin.id, embedder.model))

        async def ranked_texts(ids: list[int]) -> list[str]:
            return [p.text for p in await repo.knowledge_passages(ids)]

        def rank_of(texts: list[str], needle: str) -> int | None:
            for i, text in enumerate(texts, start=1):
                if needle in text:
                    return i
            return None

        sets = (
            ("labelled set", questions),
            ("held-out set", heldout),
            ("held-out set 2", heldout2),
        )
        for set_name, asked in sets:
            results: dict[str, dict[str, list[int | None]]] = {}
            for q in asked:
                lexical = await repo.search_knowledge(
                    twin.id, query_terms(q["question"], knowledge.synonyms), DEPTH
                )
                plain = await repo.search_knowledge(twin.id, query_terms(q["question"]), DEPTH)
                (vector,) = await embedder.embed([q["question"]])
                semantic = index.nearest(vector, DEPTH)
                fused, _ = await knowledge.search(twin.id, q["question"], DEPTH)
                for name, texts in (
                    ("lexical", await ranked_texts(lexical)),
                    ("no-synonym", await ranked_texts(plain)),
                    ("semantic", await ranked_texts(semantic)),
                    ("fused", [p.text for p in fused]),
                ):
                    for group in ("all", q["lang"]):
                        results.setdefault(name, {}).setdefault(group, []).append(
                            rank_of(texts, q["answer_contains"])
                        )
            print(f"\n[{label}] {set_name}: {len(asked)} questions, {chunks} chunks")
            print(f"{'ranking':<10} {'group':<5} {'recall@1':>9} {'recall@5':>9} {'MRR':>6}")
            for name in ("lexical", "no-synonym", "semantic", "fused"):
                for group in ("all", "ru", "en"):
                    r1, r5, mrr = metrics(results[name][group])
                    print(f"{name:<10} {group:<5} {r1:>9.2f} {r5:>9.2f} {mrr:>6.2f}")

        plain_settings = settings.knowledge.model_copy(update={"builtin_synonyms": False})
        searchers = {
            "synonyms": KnowledgeBase(settings=settings.knowledge, repo=repo),
            "plain": KnowledgeBase(settings=plain_settings, repo=repo),
        }

        async def latencies() -> dict[str, list[float]]:
            found: dict[str, list[float]] = {}
            for name, searcher in searchers.items():

                async def ask(q: dict, searcher: KnowledgeBase = searcher) -> None:
                    await searcher.search(twin.id, q["question"], 5)

                found[name] = await timed(ask, questions)
            return found

        base = await latencies()
        added = time.perf_counter()
        for name, text in filler_documents(filler):
            await searchers["plain"].add_text(twin, name, text)
        await searchers["plain"].refresh_statistics()  # as `twin knowledge add` does after a load
        added = time.perf_counter() - added
        total = sum(d.chunks for d in await repo.knowledge_documents(twin.id))
        scaled = await latencies()
        print(
            f"\n[{label}] retrieval latency (KnowledgeBase.search, lexical, top 5; "
            f"{len(base['plain'])} queries each; × p50 of the plain questions on the labelled set)"
        )
        print(f"{'questions':<10} {'chunks':>7} {'p50 ms':>8} {'p95 ms':>8} {'× p50':>7}")
        b50 = statistics.median(base["plain"])
        for n, samples in ((chunks, base), (total, scaled)):
            for name in searchers:
                p50 = statistics.median(samples[name])
                p95 = pct(samples[name], 0.95)
                print(f"{name:<10} {n:>7} {p50:>8.2f} {p95:>8.2f} {p50 / b50:>7.2f}")
        print(f"adding {filler} filler chunks took {added:.1f} s ({filler / added:.0f} chunks/s)")
        await knowledge.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filler", type=int, default=10000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    fake = FakeOpenAI()
    fake.add_routes(lambda: openai_embeddings_routes(fake))
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            await run_backend("sqlite", url, Path(tmp), fake, args.filler)
            if not args.no_postgres:
                if await fresh_postgres(args.postgres):
                    await run_backend("postgres", args.postgres, Path(tmp), fake, args.filler)
                else:
                    print("\n[postgres] not reachable: skipped")
    finally:
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
