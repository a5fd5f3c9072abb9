"""What the pipeline's steps hand each other: frozen records, never rows or closures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.domain.decide import AccountPolicy

if TYPE_CHECKING:
    from twin.db.repo.history import ConversationRow
    from twin.services.pipeline.caches import StyleRead


@dataclass(frozen=True, slots=True)
class Started:
    """What generation reads with the move to `generating`: the conversation (newest first)
    and the style profile's (version, record if not the known version)."""

    rows: list[ConversationRow]
    style: StyleRead


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the first step of a job reads (chat, stored overrides, linked messages), read
    already by whoever handed the job over: the plan that created it claimed (the fast path),
    or the worker's claim of a batch."""

    chat: ChatRecord
    overrides: dict[str, Any]
    linked: list[MessageRecord]
    # for a job created already `generating` (the fast path): read in the creating transaction
    started: Started | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """What generation produced: the text to deliver and what to store with it."""

    text: str
    voice: bool
    flags: dict[str, Any]
    usage: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # chat fields: the new summary


@dataclass(frozen=True, slots=True)
class Sending:
    """A reply in `sending` with what delivering it needs (its staged parts, in order)."""

    reply: ReplyRecord
    chat: ChatRecord
    policy: AccountPolicy
    parts: list[MessageRecord]
