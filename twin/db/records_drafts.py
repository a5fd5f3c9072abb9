"""What the drafts' repository takes and hands out (no SQLAlchemy here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twin.db.records import _Record

__all__ = ["CorrectionRecord", "DraftRecord", "StyleEvalRecord"]


@dataclass(frozen=True, slots=True)
class DraftRecord(_Record):
    id: int
    account_id: int
    chat_id: int
    reply_id: int  # the job that wrote it (skipped, reason `drafted`)
    sent_reply_id: int | None  # the job that sends it, once the owner sent it
    state: str  # pending | sent | skipped | expired | superseded | cancelled
    reason: str | None
    text: str  # what the twin wrote
    final_text: str | None  # what the owner sent (the text, or their edit)
    created_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    notice_random_id: int | None  # the note in the owner's Saved Messages, or from a bot
    notice_message_id: int | None
    notice_route: str | None  # "saved" | "bot"; None: not decided yet
    notice_bot_id: int | None  # the bot's account id (route "bot")
    # where it belongs, for the owner's list
    account: str
    peer_id: int
    title: str | None


@dataclass(frozen=True, slots=True)
class CorrectionRecord(_Record):
    """What the owner made of a draft: `approved` (sent unchanged), `edited` (their text sent
    instead), `skipped`. `context` is what the contact wrote."""

    id: int
    account_id: int
    chat_id: int
    draft_id: int | None
    kind: str
    context: str
    twin_text: str
    owner_text: str | None
    created_at: datetime
    account: str
    peer_id: int


@dataclass(frozen=True, slots=True)
class StyleEvalRecord(_Record):
    """A stored `twin style eval`: the score, the figures (twin.services.style_eval) and the
    HTML report's path on the machine that ran it."""

    id: int
    account_id: int
    model: str
    samples: int
    score: int
    result: dict[str, Any]
    report_path: str | None
    created_at: datetime
    account: str
