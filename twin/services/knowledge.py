"""Each twin's knowledge base: documents in (parsed, chunked by structure, analysed, embedded
when a provider is configured, stored whole or not at all), passages out (lexical ranking in the
database, semantic ranking over the stored vectors, fused by reciprocal rank).

Adding a document is idempotent by content: the same bytes under the same name change nothing;
changed bytes replace its chunks in one transaction. Parsing and chunking run in a thread (a
PDF can take a while); a file that cannot be parsed is refused by name before anything is
stored. Retrieval never fails a reply: an embeddings outage leaves the lexical ranking alone,
with one warning."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from twin.db.records_knowledge import (
    FactRecord,
    KnowledgeDocRecord,
    KnowledgeLimit,
    NewChunk,
    NewDocument,
)
from twin.domain.chunking import chunk_sections
from twin.domain.conversation import Turn
from twin.domain.knowledge import Passage, query_text, reciprocal_rank_fusion
from twin.errors import AdapterError, InvalidInput, TooLarge
from twin.knowledge.analyze import index_terms, query_terms
from twin.knowledge.parse import (
    DocumentError,
    DocumentKind,
    ParsedDocument,
    parse_document,
    parse_text,
)
from twin.knowledge.synonyms import Synonyms, load_synonyms
from twin.services.events import EventLog, StagedEvent

if TYPE_CHECKING:
    from twin.brain.embeddings import Embedder
    from twin.config_knowledge import KnowledgeSettings
    from twin.db.records import TwinRecord
    from twin.db.repo import Repository, Transaction
    from twin.knowledge.vectors import VectorIndex

__all__ = ["Added", "Context", "KnowledgeBase"]

log = logging.getLogger("twin.knowledge")


@dataclass(frozen=True, slots=True)
class Context:
    """What one answer is given: passages (best first), whether the twin has a knowledge base,
    and the facts remembered of the chat's person."""

    passages: list[Passage]
    has_knowledge: bool
    facts: list[FactRecord]


@dataclass(frozen=True, slots=True)
class Added:
    document: KnowledgeDocRecord
    outcome: str  # added | replaced | unchanged


class KnowledgeBase:
    def __init__(
        self,
        *,
        settings: KnowledgeSettings,
        repo: Repository,
        embedder: Embedder | None = None,
        events: EventLog | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._embedder = embedder
        self._events = events  # knowledge.added / knowledge.removed (also staged without it)
        self._vectors: dict[int, tuple[Any, VectorIndex]] = {}  # twin id → (version, index)
        self._synonyms: Synonyms | None = None  # built on first use (it stems every line)

    @property
    def synonyms(self) -> Synonyms:
        if self._synonyms is None:
            settings = self._settings
            self._synonyms = load_synonyms(
                builtin=settings.builtin_synonyms, path=settings.synonyms_file
            )
        return self._synonyms

    @property
    def settings(self) -> KnowledgeSettings:
        return self._settings

    # -- documents -----------------------------------------------------------------------------
    async def add_file(
        self, twin: TwinRecord, name: str, data: bytes, content_type: str | None = None
    ) -> Added:
        """Add (or replace, by name) a document from its bytes."""
        name = document_name(name)
        self._check_size(name, len(data))
        try:
            parsed = await asyncio.to_thread(parse_document, name, data, content_type)
        except DocumentError as exc:
            raise InvalidInput("file", str(exc)) from None
        return await self._store(twin, parsed, hashlib.sha256(data).hexdigest(), len(data))

    async def add_text(
        self, twin: TwinRecord, name: str, text: str, kind: DocumentKind = "markdown"
    ) -> Added:
        """Add (or replace) a document given as text (Markdown unless `kind` says otherwise)."""
        name = document_name(name)
        data = text.encode("utf-8")
        self._check_size(name, len(data))
        try:
            parsed = await asyncio.to_thread(parse_text, name, text, kind)
        except DocumentError as exc:
            raise InvalidInput("text", str(exc)) from None
        return await self._store(twin, parsed, hashlib.sha256(data).hexdigest(), len(data))

    async def documents(self, twin_id: int) -> list[KnowledgeDocRecord]:
        return await self._repo.knowledge_documents(twin_id)

    async def refresh_statistics(self) -> None:
        """After a bulk load (the CLI's): the database's statistics of the chunks."""
        await self._repo.refresh_knowledge_statistics()

    async def remove(self, twin: TwinRecord, name: str) -> None:
        name = document_name(name)

        def work(tx: Transaction) -> StagedEvent:
            tx.delete_document(twin.id, name)
            data = {"twin": twin.name, "document": name}
            return EventLog.stage(tx, "knowledge.removed", data)

        self._publish(await self._repo.transaction(work, hot=False))
        self._vectors.pop(twin.id, None)

    def _publish(self, staged: StagedEvent | None) -> None:
        if self._events is not None:
            self._events.publish(staged)

    def _check_size(self, name: str, size: int) -> None:
        limit = self._settings.max_document_bytes
        if size > limit:
            raise TooLarge("file", f"{name}: {size} bytes, over the limit of {limit} bytes")

    async def _store(
        self, twin: TwinRecord, parsed: ParsedDocument, sha256: str, size: int
    ) -> Added:
        twin_id = twin.id
        chunks = await asyncio.to_thread(self._chunks, parsed)
        if not chunks:
            raise InvalidInput("file", f"{parsed.name}: no text to store")
        if len(chunks) > self._settings.max_chunks:
            raise InvalidInput(
                "file",
                f"{parsed.name}: {len(chunks)} chunks, over the limit of "
                f"{self._settings.max_chunks} per twin",
            )
        model = None
        if self._embedder is not None:
            model = self._embedder.model
            stored = {d.name: d for d in await self._repo.knowledge_documents(twin_id)}
            same = stored.get(parsed.name)
            if same is not None and same.sha256 == sha256 and same.embedding_model == model:
                return Added(same, "unchanged")  # no embeddings call for an unchanged file
            from twin.brain.embeddings import pack

            vectors = await self._embedder.embed([_passage_text(c) for c in chunks])
            chunks = [
                NewChunk(c.heading, c.text, c.terms, c.tokens, pack(v))
                for c, v in zip(chunks, vectors, strict=True)
            ]
        document = NewDocument(parsed.name, parsed.kind, sha256, size, chunks, model)
        limits = {
            "max_documents": self._settings.max_documents,
            "max_chunks": self._settings.max_chunks,
        }

        def work(tx: Transaction) -> tuple[KnowledgeDocRecord, str, StagedEvent | None]:
            record, outcome = tx.store_document(twin_id, document, **limits)
            if outcome == "unchanged":
                return record, outcome, None
            data = {
                "twin": twin.name,
                "document": record.name,
                "outcome": outcome,
                "chunks": record.chunks,
            }
            return record, outcome, EventLog.stage(tx, "knowledge.added", data)

        try:
            record, outcome, staged = await self._repo.transaction(work, hot=False)
        except KnowledgeLimit as exc:
            raise InvalidInput("file", f"{parsed.name}: {exc}") from None
        self._publish(staged)
        if outcome != "unchanged":
            self._vectors.pop(twin_id, None)
        return Added(record, outcome)

    def _chunks(self, parsed: ParsedDocument) -> list[NewChunk]:
        out = []
        for chunk in chunk_sections(parsed.sections, max_tokens=self._settings.chunk_tokens):
            if not _encodable(chunk.heading) or not _encodable(chunk.text):
                # e.g. a lone surrogate from a JSON "\ud800": no database would store it
                raise InvalidInput("file", f"{parsed.name}: not valid Unicode text")
            terms = index_terms(chunk.heading, chunk.text)
            out.append(NewChunk(chunk.heading, chunk.text, terms, chunk.tokens))
        return out

    # -- retrieval -----------------------------------------------------------------------------
    async def context(
        self,
        account_id: int,
        chat_id: int,
        turns: Sequence[Turn],
        summary: str | None,
        *,
        memory: bool,
    ) -> Context:
        """What an answer in this chat is given: the best passages for the conversation's
        newest turns (at most `top_k`, best first), whether the account's twin has a knowledge
        base at all, and (with `memory`) what is remembered of the chat's person. Lexically it
        is one read of the database (twin, documents, search, passages, memory); the semantic
        ranking adds the question's embedding and, when fused, a read of the passages."""
        limit = self._settings.top_k
        candidates = max(self._settings.candidates, limit)
        text = query_text(turns, summary, last_turns=self._settings.query_turns)

        def work(tx: Transaction) -> tuple[int | None, int, list[int], list[Passage], list]:
            twin_id, docs = tx.knowledge_twin(account_id)
            ids: list[int] = []
            passages: list[Passage] = []
            if twin_id is not None and docs and limit:  # stemmed only for a knowledge base
                ids = tx.search_knowledge(twin_id, query_terms(text, self.synonyms), candidates)
                passages = tx.knowledge_passages(ids[:limit])
            facts = tx.memory_for_chat(chat_id) if memory else []
            return twin_id, docs, ids, passages, facts

        twin_id, docs, lexical, passages, facts = await self._repo.transaction(work, write=False)
        if twin_id is not None and docs and limit and self._embedder is not None:
            semantic, _ = await self._semantic(twin_id, text, candidates)
            if semantic:
                fused = reciprocal_rank_fusion([lexical, semantic])[:limit]
                passages = await self._repo.knowledge_passages(fused)
        return Context(passages, docs > 0, facts)

    async def search(self, twin_id: int, text: str, limit: int) -> tuple[list[Passage], bool]:
        """Passages of the twin's knowledge base for `text`, best first (lexical, fused with
        semantic when embeddings are configured); and whether it has any document."""
        candidates = max(self._settings.candidates, limit)
        terms = query_terms(text, self.synonyms)

        def work(tx: Transaction) -> tuple[list[int], list[Passage], int]:
            ids = tx.search_knowledge(twin_id, terms, candidates)
            docs, _, _ = tx.knowledge_version(twin_id)
            return ids, tx.knowledge_passages(ids[:limit]), docs

        lexical, passages, docs = await self._repo.transaction(work, write=False)
        if self._embedder is not None and text.strip():
            semantic, _ = await self._semantic(twin_id, text, candidates)
            if semantic:
                fused = reciprocal_rank_fusion([lexical, semantic])[:limit]
                passages = await self._repo.knowledge_passages(fused)
        return passages, docs > 0

    async def _semantic(self, twin_id: int, text: str, limit: int) -> tuple[list[int], bool]:
        """The semantic ranking of `text`: one embeddings attempt within `query_timeout`, so a
        slow or failing provider never holds a reply up (the lexical ranking answers)."""
        assert self._embedder is not None
        if not text.strip():
            return [], False
        index = await self._index(twin_id)
        if not len(index):
            return [], False
        timeout = self._settings.embeddings.query_timeout
        try:
            (vector,) = await asyncio.wait_for(self._embedder.embed([text], retry=False), timeout)
        except (AdapterError, TimeoutError) as exc:
            log.warning("knowledge: no semantic ranking for this answer (%s)", exc or "timeout")
            return [], True
        return index.nearest(vector, limit), True

    async def _index(self, twin_id: int) -> VectorIndex:
        """The twin's vectors, read again when its documents changed (in any process)."""
        from twin.knowledge.vectors import VectorIndex

        version = await self._repo.knowledge_version(twin_id)
        cached = self._vectors.get(twin_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        assert self._embedder is not None
        index = VectorIndex(await self._repo.knowledge_vectors(twin_id, self._embedder.model))
        self._vectors[twin_id] = (version, index)
        return index

    async def aclose(self) -> None:
        if self._embedder is not None:
            await self._embedder.aclose()


def _passage_text(chunk: NewChunk) -> str:
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def document_name(name: str) -> str:
    """A document's name as stored and addressed: the file's base name (percent-encoding, which
    HTTP clients apply to file names, decoded), in Unicode NFC so every spelling of one name is
    one name, trimmed; refused when empty, too long, unprintable or not valid Unicode."""
    if "%" in name:
        name = unquote(name, errors="strict") if _percent_encoded(name) else name
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if (
        not base
        or len(base) > 255
        or base in (".", "..")
        or not _encodable(base)
        or any(not ch.isprintable() for ch in base)
    ):
        raise InvalidInput("name", "a document name of 1–255 printable characters")
    return base


def _percent_encoded(name: str) -> bool:
    """Whether `name` is valid percent-encoded UTF-8 (else its % signs are its own)."""
    try:
        unquote(name, errors="strict")
    except UnicodeDecodeError:
        return False
    return bool(re.search(r"%[0-9A-Fa-f]{2}", name))
