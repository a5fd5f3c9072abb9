"""ORM models of the safety governor (twin.domain.safety): each account's mode — active, draft
or off — with who set it and why, and the ledger of the rare events the governor acts on
(Telegram's flood waits and spam limits, first contacts, mode changes). Calls themselves are
counted in memory by the process that owns the account; only these events are stored."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import ID, Base, UTCDateTime, one_of, utcnow

ACCOUNT_MODES = ("active", "draft", "off")
SAFETY_EVENT_KINDS = ("flood_wait", "spam_limit", "first_contact", "mode")




class AccountSafety(Base):
    """An account's mode; no row = active. `set_by`: owner (API, command) or governor."""

    __tablename__ = "account_safety"
    __table_args__ = (sa.CheckConstraint(one_of("mode", ACCOUNT_MODES), name="mode"),)

    account_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(sa.String(8), nullable=False)
    reason: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")
    set_by: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # The note to the owner's Saved Messages about the change: sent with this random id, so a
    # retry after a crash never sends it twice.
    notify_random_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    notified: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )


class SafetyEvent(Base):
    __tablename__ = "safety_events"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", SAFETY_EVENT_KINDS), name="kind"),
        sa.Index("ix_safety_events_account_at", "account_id", "at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    category: Mapped[str | None] = mapped_column(sa.String(16))
    seconds: Mapped[float | None] = mapped_column(sa.Float)
    detail: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
