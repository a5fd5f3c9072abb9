"""ORM models of what the twin learns from and is measured by (issue 18): the owner's corrections
(§2) — what the twin wrote in a context and what the owner made of it: a draft sent unchanged,
sent edited or skipped; a sent reply the owner edited or deleted from their phone (the most
similar ones become the prompt's first examples) — and the style evaluations (§4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import ID, Base, UTCDateTime, one_of, utcnow

CORRECTION_KINDS = (
    "approved", "edited", "skipped", "phone_edited", "phone_deleted", "followed_up"
)


class Correction(Base):
    __tablename__ = "corrections"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", CORRECTION_KINDS), name="kind"),
        sa.Index("ix_corrections_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    chat_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    draft_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("drafts.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    context: Mapped[str] = mapped_column(sa.Text, nullable=False)  # what the contact wrote
    twin_text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    owner_text: Mapped[str | None] = mapped_column(sa.Text)  # what the owner sent; skipped: none
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class StyleEval(Base):
    """One `twin style eval`: its score and figures (`result`, as `GET /style/evals` gives it)."""

    __tablename__ = "style_evals"
    __table_args__ = (sa.Index("ix_style_evals_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    model: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    samples: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    score: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), nullable=False)
    report_path: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
