"""ORM models of what a twin knows: its knowledge base (documents and their chunks) and what it
remembers of each contact (contacts, their facts and the twin's open promises).

The lexical index is not in these models, because it is each backend's own: on SQLite an FTS5
table `knowledge_fts` (external content: the chunks' `terms`, kept in step by triggers), on
PostgreSQL a stored `tsv` tsvector column of `knowledge_chunks` with a GIN index. Both index the
same `terms`: the chunk's words stemmed by twin.knowledge.analyze (Snowball, Russian and
English), so both databases rank the same tokens. Migration 0013 creates them; the drift test
knows to leave them out (`BACKEND_INDEX_OBJECTS`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import ID, Base, UTCDateTime, one_of, utcnow

DOCUMENT_KINDS = ("text", "markdown", "html", "pdf", "qa")
FACT_KINDS = ("fact", "preference", "date", "promise", "followup")

# Objects of the migrated schema the models do not declare (see the module docstring).
BACKEND_INDEX_OBJECTS = frozenset(
    {
        "knowledge_fts",
        "knowledge_fts_data",
        "knowledge_fts_idx",
        "knowledge_fts_docsize",
        "knowledge_fts_config",
        "knowledge_fts_content",
        "ix_knowledge_chunks_tsv",
        "tsv",
    }
)




def _twin_fk() -> Mapped[int]:
    return mapped_column(ID, sa.ForeignKey("twins.id", ondelete="CASCADE"), nullable=False)


def _stamp(*, onupdate: bool = False) -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow if onupdate else None,
        server_default=sa.func.now(),
    )


class KnowledgeDocument(Base):
    """One document of a twin's knowledge base, by name; `sha256` of its bytes decides whether
    adding it again changes anything."""

    __tablename__ = "knowledge_docs"
    __table_args__ = (
        sa.UniqueConstraint("twin_id", "name"),
        sa.CheckConstraint(one_of("kind", DOCUMENT_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    twin_id: Mapped[int] = _twin_fk()
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    size: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    chunks: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    embedding_model: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp(onupdate=True)


class KnowledgeChunk(Base):
    """A passage of a document, as the model is shown it (`heading`, `text`) and as the
    lexical index sees it (`terms`); `embedding`: float32 little-endian, when an embedding
    provider is configured."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        sa.UniqueConstraint("doc_id", "ordinal"),
        sa.Index("ix_knowledge_chunks_twin_id", "twin_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    doc_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("knowledge_docs.id", ondelete="CASCADE"), nullable=False
    )
    twin_id: Mapped[int] = _twin_fk()
    ordinal: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    heading: Mapped[str] = mapped_column(sa.Text, nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    terms: Mapped[str] = mapped_column(sa.Text, nullable=False)
    tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    embedding: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


class Contact(Base):
    """A person as the twin recognises them on any channel: by Telegram user id and/or phone
    number. `memory_upto` per chat lives in the chat's channel_data."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("twin_id", "telegram_user_id"),
        sa.UniqueConstraint("twin_id", "phone"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    twin_id: Mapped[int] = _twin_fk()
    telegram_user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    name: Mapped[str | None] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp(onupdate=True)


class ContactFact(Base):
    """Something durable a contact said about themselves (or, `followup`, a promise the twin
    made them), with the message it came from; `done_at` closes a promise."""

    __tablename__ = "contact_facts"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", FACT_KINDS), name="kind"),
        sa.Index("ix_contact_facts_contact_id", "contact_id"),
        sa.Index("ix_contact_facts_kind_done_at", "kind", "done_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    text: Mapped[str] = mapped_column(sa.String(500), nullable=False)
    chat_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("chats.id", ondelete="SET NULL")
    )
    message_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("messages.id", ondelete="SET NULL")
    )
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _stamp()
    updated_at: Mapped[datetime] = _stamp(onupdate=True)
