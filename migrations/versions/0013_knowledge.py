"""knowledge: a knowledge base per twin (documents, chunks, the lexical index) and the
memory of each contact (contacts, facts, the twin's open promises; each chat's extraction
cursor)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

The lexical index is each backend's own (see twin/db/tables_knowledge.py): an FTS5 table with
external content kept in step by triggers on SQLite; a stored tsvector column with a GIN index
on PostgreSQL. Both index `terms`, the chunk's stemmed words. Nothing existing is changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _stamp(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def _fk(column: str, table: str, source: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{source}_{column}_{table}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "knowledge_docs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("twin_id", _id(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=128)),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.CheckConstraint(
            "kind IN ('text', 'markdown', 'html', 'pdf', 'qa')",
            name=op.f("ck_knowledge_docs_kind"),
        ),
        _fk("twin_id", "twins", "knowledge_docs", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_docs")),
        sa.UniqueConstraint("twin_id", "name", name=op.f("uq_knowledge_docs_twin_id_name")),
    )
    op.create_table(
        "knowledge_chunks",
        sa.Column("id", _id(), nullable=False),
        sa.Column("doc_id", _id(), nullable=False),
        sa.Column("twin_id", _id(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary()),
        _fk("doc_id", "knowledge_docs", "knowledge_chunks", "CASCADE"),
        _fk("twin_id", "twins", "knowledge_chunks", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_chunks")),
        sa.UniqueConstraint("doc_id", "ordinal", name=op.f("uq_knowledge_chunks_doc_id_ordinal")),
    )
    op.create_index("ix_knowledge_chunks_twin_id", "knowledge_chunks", ["twin_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE knowledge_chunks ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', terms)) STORED"
        )
        # fastupdate off: a knowledge base is written rarely and searched on every answer, and
        # GIN's pending list (scanned linearly by every search until a vacuum) made a search
        # over 10,000 fresh chunks ten times slower
        op.execute(
            "CREATE INDEX ix_knowledge_chunks_tsv ON knowledge_chunks USING gin (tsv) "
            "WITH (fastupdate = off)"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE knowledge_fts USING fts5(terms, content='knowledge_chunks', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER knowledge_fts_ai AFTER INSERT ON knowledge_chunks BEGIN "
            "INSERT INTO knowledge_fts(rowid, terms) VALUES (new.id, new.terms); END"
        )
        op.execute(
            "CREATE TRIGGER knowledge_fts_ad AFTER DELETE ON knowledge_chunks BEGIN "
            "INSERT INTO knowledge_fts(knowledge_fts, rowid, terms) "
            "VALUES ('delete', old.id, old.terms); END"
        )
        op.execute(
            "CREATE TRIGGER knowledge_fts_au AFTER UPDATE OF terms ON knowledge_chunks BEGIN "
            "INSERT INTO knowledge_fts(knowledge_fts, rowid, terms) "
            "VALUES ('delete', old.id, old.terms); "
            "INSERT INTO knowledge_fts(rowid, terms) VALUES (new.id, new.terms); END"
        )
    op.create_table(
        "contacts",
        sa.Column("id", _id(), nullable=False),
        sa.Column("twin_id", _id(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger()),
        sa.Column("phone", sa.String(length=32)),
        sa.Column("name", sa.String(length=256)),
        _stamp("created_at"),
        _stamp("updated_at"),
        _fk("twin_id", "twins", "contacts", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint(
            "twin_id", "telegram_user_id", name=op.f("uq_contacts_twin_id_telegram_user_id")
        ),
        sa.UniqueConstraint("twin_id", "phone", name=op.f("uq_contacts_twin_id_phone")),
    )
    op.create_table(
        "contact_facts",
        sa.Column("id", _id(), nullable=False),
        sa.Column("contact_id", _id(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("chat_id", _id()),
        sa.Column("message_id", _id()),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.CheckConstraint(
            "kind IN ('fact', 'preference', 'date', 'promise', 'followup')",
            name=op.f("ck_contact_facts_kind"),
        ),
        _fk("contact_id", "contacts", "contact_facts", "CASCADE"),
        _fk("chat_id", "chats", "contact_facts", "SET NULL"),
        _fk("message_id", "messages", "contact_facts", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_facts")),
    )
    op.create_index("ix_contact_facts_contact_id", "contact_facts", ["contact_id"])
    op.create_index("ix_contact_facts_kind_done_at", "contact_facts", ["kind", "done_at"])
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("memory_upto_message_id", sa.BigInteger()))
        batch.add_column(sa.Column("memory_at", sa.DateTime(timezone=True)))
    # Conversations from before contact memory start with their cursor at their newest message:
    # only what is said from now on is read (never every old chat at once, after an upgrade).
    op.execute(
        "UPDATE chats SET memory_upto_message_id = "
        "(SELECT max(m.id) FROM messages m WHERE m.chat_id = chats.id), "
        "memory_at = COALESCE(last_incoming_at, last_outgoing_at)"
    )


def downgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("memory_at")
        batch.drop_column("memory_upto_message_id")
    op.drop_index("ix_contact_facts_kind_done_at", "contact_facts")
    op.drop_index("ix_contact_facts_contact_id", "contact_facts")
    op.drop_table("contact_facts")
    op.drop_table("contacts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_knowledge_chunks_tsv")
    else:
        op.execute("DROP TRIGGER knowledge_fts_au")
        op.execute("DROP TRIGGER knowledge_fts_ad")
        op.execute("DROP TRIGGER knowledge_fts_ai")
        op.execute("DROP TABLE knowledge_fts")
    op.drop_index("ix_knowledge_chunks_twin_id", "knowledge_chunks")
    op.drop_table("knowledge_chunks")
    op.drop_table("knowledge_docs")
