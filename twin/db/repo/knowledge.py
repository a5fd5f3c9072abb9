"""The knowledge base of each twin: documents stored whole or not at all, and lexical search
in the database itself (SQLite FTS5 bm25; PostgreSQL full-text search over a GIN index), both
over the same stemmed `terms` (twin.knowledge.analyze)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
from twin.db.records_knowledge import (
    KnowledgeDocRecord,
    KnowledgeLimit,
    NewDocument,
)
from twin.db.repo._base import RepoBase, chunks, conflict_on_integrity
from twin.db.repo.twins import ACCOUNT_TWIN
from twin.db.tables import Account, Reply, Twin
from twin.db.tables_knowledge import KnowledgeChunk, KnowledgeDocument
from twin.domain.knowledge import Passage, TermStats, bm25_rank
from twin.errors import NotFound

D = KnowledgeDocument.__table__
C = KnowledgeChunk.__table__
A = Account.__table__
T = Twin.__table__
R = Reply.__table__

# Every reply asks it (prepared: compiled once, run leanly on SQLite's own cursor).
_TWIN_DOCUMENTS = prepared(
    sa.select(T.c.id, sa.select(sa.func.count()).where(D.c.twin_id == T.c.id).scalar_subquery())
    .select_from(A.join(T, ACCOUNT_TWIN))
    .where(A.c.id == sa.bindparam("_account_id"))
)

_SQLITE_SEARCH = sa.text(
    "SELECT c.id, bm25(knowledge_fts) AS score FROM knowledge_fts "
    "JOIN knowledge_chunks c ON c.id = knowledge_fts.rowid "
    "WHERE knowledge_fts MATCH :q AND c.twin_id = :twin ORDER BY score LIMIT :k"
)
# PostgreSQL has no BM25: ts_rank knows no document frequencies, so a word every chunk has
# counts as much as a rare one. The GIN index finds the chunks with any of the terms and
# ts_rank (normalization 1: divided by 1 + log(length)) picks a pool of RERANK_POOL, which
# twin.domain.knowledge.bm25_rank ranks with FTS5's formula and the twin's term statistics
# (`_term_stats`, cached per twin until its documents change): the same ranking as SQLite's.
# The query is a constant in the WHERE clause, so the planner can use the GIN index.
_POSTGRES_POOL = sa.text(
    "SELECT id, terms FROM knowledge_chunks "
    "WHERE twin_id = :twin AND tsv @@ to_tsquery('simple', :q) "
    "ORDER BY ts_rank(tsv, to_tsquery('simple', :q), 1) DESC, id LIMIT :k"
)
RERANK_POOL = 50
_TERM_DF = sa.text(
    "SELECT word, ndoc FROM ts_stat(format("
    "'SELECT tsv FROM knowledge_chunks WHERE twin_id = %s', CAST(:twin AS bigint)))"
)
_TERM_LENGTHS = sa.text(
    "SELECT count(*), avg(array_length(string_to_array(terms, ' '), 1)) "
    "FROM knowledge_chunks WHERE twin_id = :twin"
)


class KnowledgeMixin(RepoBase):
    async def knowledge_documents(self, twin_id: int) -> list[KnowledgeDocRecord]:
        query = sa.select(D).where(D.c.twin_id == twin_id).order_by(D.c.name)
        return await self._read(
            lambda c: [KnowledgeDocRecord.from_row(row._mapping) for row in c.execute(query)]
        )

    def _store_document(
        self,
        c: Connection,
        twin_id: int,
        document: NewDocument,
        *,
        max_documents: int,
        max_chunks: int,
    ) -> tuple[KnowledgeDocRecord, str]:
        """Add the document, or replace the one of the same name: one transaction, so a
        document is stored whole or not at all. "unchanged" (nothing written) when the stored
        one has the same content hash and embedding model; else "added" or "replaced".
        Raises KnowledgeLimit when the twin would pass `max_documents` or `max_chunks`."""
        if self._is_postgres(c):
            # uploads to one twin take turns (SQLite's writes do anyway): the limits below are
            # read and kept by one of them at a time, and one name is never inserted twice
            c.execute(sa.select(T.c.id).where(T.c.id == twin_id).with_for_update())
        old = c.execute(
            sa.select(D).where(D.c.twin_id == twin_id, D.c.name == document.name)
        ).first()
        if (
            old is not None
            and old.sha256 == document.sha256
            and old.embedding_model == document.embedding_model
        ):
            return KnowledgeDocRecord.from_row(old._mapping), "unchanged"
        docs, held = c.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(D.c.chunks), 0)).where(
                D.c.twin_id == twin_id
            )
        ).one()
        if old is not None:
            docs, held = docs - 1, held - old.chunks
            c.execute(sa.delete(D).where(D.c.id == old.id))  # its chunks go with it
        if docs + 1 > max_documents:
            raise KnowledgeLimit("documents", max_documents)
        if held + len(document.chunks) > max_chunks:
            raise KnowledgeLimit("chunks", max_chunks)
        with conflict_on_integrity(f"the document '{document.name}' is being stored already"):
            row = c.execute(
                sa.insert(D)
                .values(
                    twin_id=twin_id,
                    name=document.name,
                    kind=document.kind,
                    sha256=document.sha256,
                    size=document.size,
                    chunks=len(document.chunks),
                    tokens=sum(chunk.tokens for chunk in document.chunks),
                    embedding_model=document.embedding_model,
                )
                .returning(*D.c)
            ).one()
        rows = [
            {
                "doc_id": row.id,
                "twin_id": twin_id,
                "ordinal": ordinal,
                "heading": chunk.heading,
                "text": chunk.text,
                "terms": chunk.terms,
                "tokens": chunk.tokens,
                "embedding": chunk.embedding,
            }
            for ordinal, chunk in enumerate(document.chunks)
        ]
        for batch in chunks(rows):
            c.execute(sa.insert(C), list(batch))
        if self._is_postgres(c) and len(rows) * 5 >= held + len(rows):
            # a fifth of the twin's chunks or more are new: fresh statistics, or the planner
            # filters every chunk of the twin instead of asking the GIN index (autovacuum
            # would analyze only later); `refresh_knowledge_statistics` after a bulk load
            c.execute(sa.text("ANALYZE knowledge_chunks"))
        record = KnowledgeDocRecord.from_row(row._mapping)
        return record, "replaced" if old is not None else "added"

    async def refresh_knowledge_statistics(self) -> None:
        """After many documents were added: PostgreSQL's planner statistics of the chunks
        (FTS5 needs none)."""

        def work(c: Connection) -> None:
            if self._is_postgres(c):
                c.execute(sa.text("ANALYZE knowledge_chunks"))

        await self._run(work)

    def _delete_document(self, c: Connection, twin_id: int, name: str) -> None:
        deleted = c.execute(sa.delete(D).where(D.c.twin_id == twin_id, D.c.name == name))
        if deleted.rowcount == 0:
            raise NotFound(f"no document named '{name}'")

    async def search_knowledge(self, twin_id: int, terms: Sequence[str], limit: int) -> list[int]:
        """Ids of the twin's chunks matching any of `terms` (stems from
        twin.knowledge.analyze), best first."""
        return await self._read(lambda c: self._search_knowledge(c, twin_id, terms, limit))

    def _search_knowledge(
        self, c: Connection, twin_id: int, terms: Sequence[str], limit: int
    ) -> list[int]:
        if not terms:
            return []
        if self._is_postgres(c):
            query = " | ".join(terms)
            pool = c.execute(
                _POSTGRES_POOL, {"q": query, "twin": twin_id, "k": max(limit, RERANK_POOL)}
            ).all()
            if not pool:
                return []
            stats = self._term_stats(c, twin_id)
            return bm25_rank([(row[0], row[1]) for row in pool], terms, stats)[:limit]
        else:
            query = " OR ".join(f'"{term}"' for term in terms)
            rows = c.execute(_SQLITE_SEARCH, {"q": query, "twin": twin_id, "k": limit})
        return [row[0] for row in rows]

    def _term_stats(self, c: Connection, twin_id: int) -> TermStats:
        """The twin's term statistics on PostgreSQL (every lexeme's chunk count, the chunks'
        number and mean length): read once per version of its knowledge base (~0.1 s for
        10,000 chunks) and kept by this repository — another process's change shows in the
        version, read with every search."""
        version = self._knowledge_version(c, twin_id)
        cached = self._term_cache.get(twin_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        df = {word: int(n) for word, n in c.execute(_TERM_DF, {"twin": twin_id})}
        count, mean = c.execute(_TERM_LENGTHS, {"twin": twin_id}).one()
        stats = TermStats(df, int(count), float(mean or 0.0))
        self._term_cache[twin_id] = (version, stats)
        return stats

    async def knowledge_passages(self, ids: Sequence[int]) -> list[Passage]:
        """The chunks as passages, in the order of `ids` (unknown ids left out)."""
        return await self._read(lambda c: self._knowledge_passages(c, ids))

    def _knowledge_passages(self, c: Connection, ids: Sequence[int]) -> list[Passage]:
        if not ids:
            return []
        query = (
            sa.select(C.c.id, D.c.name, C.c.heading, C.c.text, C.c.tokens)
            .join(D, D.c.id == C.c.doc_id)
            .where(C.c.id.in_(list(ids)))
        )
        found = {row[0]: Passage(*row) for row in c.execute(query)}
        return [found[i] for i in ids if i in found]

    def _knowledge_twin(self, c: Connection, account_id: int) -> tuple[int | None, int]:
        """The account's twin and how many documents it has, in one statement."""
        row = c.execute(_TWIN_DOCUMENTS, {"_account_id": account_id}).first()
        return (None, 0) if row is None else (row[0], int(row[1] or 0))

    async def knowledge_vectors(self, twin_id: int, model: str) -> list[tuple[int, bytes]]:
        """Every chunk of the twin embedded by `model`: (id, float32 little-endian vector);
        vectors of another model mean nothing next to this one's."""
        query = (
            sa.select(C.c.id, C.c.embedding)
            .join(D, D.c.id == C.c.doc_id)
            .where(
                C.c.twin_id == twin_id,
                C.c.embedding.is_not(None),
                D.c.embedding_model == model,
            )
        )
        return await self._read(lambda c: [(row[0], row[1]) for row in c.execute(query)])

    async def knowledge_version(self, twin_id: int) -> tuple[int, int, datetime | None]:
        """(documents, chunks, the latest change) of the twin's knowledge base: what a cache
        of its vectors compares."""
        return await self._read(lambda c: self._knowledge_version(c, twin_id))

    def _knowledge_version(self, c: Connection, twin_id: int) -> tuple[int, int, datetime | None]:
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(D.c.chunks), 0),
            sa.func.max(D.c.updated_at),
        ).where(D.c.twin_id == twin_id)
        docs, total, latest = c.execute(query).one()
        if isinstance(latest, str):  # SQLite's max() of stored text
            latest = datetime.fromisoformat(latest + "+00:00")
        return int(docs), int(total), latest
