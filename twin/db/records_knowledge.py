"""What the repository of knowledge and contact memory takes and hands out (no SQLAlchemy
here: the services import these)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from twin.db.records import ChatRecord, _Record
from twin.domain.memory import Person

__all__ = [
    "ContactRecord",
    "FactRecord",
    "KnowledgeDocRecord",
    "KnowledgeLimit",
    "NewChunk",
    "NewDocument",
    "QuietChat",
]


@dataclass(frozen=True, slots=True)
class KnowledgeDocRecord(_Record):
    id: int
    twin_id: int
    name: str
    kind: str
    sha256: str
    size: int
    chunks: int
    tokens: int
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewChunk:
    heading: str
    text: str
    terms: str
    tokens: int
    embedding: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewDocument:
    name: str
    kind: str
    sha256: str
    size: int
    chunks: Sequence[NewChunk]
    embedding_model: str | None = None


class KnowledgeLimit(Exception):
    """Storing the document would pass a limit of the twin's knowledge base."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        super().__init__(f"the knowledge base holds at most {limit} {what}")


@dataclass(frozen=True, slots=True)
class ContactRecord(_Record):
    """A person a twin recognises on every channel (by Telegram user id and/or phone)."""

    id: int
    twin_id: int
    telegram_user_id: int | None
    phone: str | None
    name: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FactRecord(_Record):
    """What a contact told the twin (fact, preference, date, promise), or the twin's own open
    promise to them (followup), with the message it came from."""

    id: int
    contact_id: int
    kind: str
    text: str
    chat_id: int | None
    message_id: int | None
    done_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class QuietChat:
    """A conversation gone quiet with messages newer than its extraction cursor."""

    chat: ChatRecord
    twin_id: int
    person: Person
    cursor: int | None  # memory_upto_message_id when read (the compare-and-set's old value)
