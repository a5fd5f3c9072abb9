"""ORM model of the owner's drafts (copilot mode): a reply the twin wrote but did not send,
waiting for the owner's decision — send (as written or edited), skip — until it expires, is
replaced by a newer draft for the chat, or is cancelled by the owner writing there."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from twin.db.base import ID, Base, UTCDateTime, one_of, utcnow

DRAFT_STATES = ("pending", "sent", "skipped", "expired", "superseded", "cancelled")


class Draft(Base):
    __tablename__ = "drafts"
    __table_args__ = (
        sa.CheckConstraint(one_of("state", DRAFT_STATES), name="state"),
        sa.Index("ix_drafts_state_expires_at", "state", "expires_at"),
        sa.Index("ix_drafts_chat_id_state", "chat_id", "state"),
        sa.Index("ix_drafts_account_id_created_at", "account_id", "created_at"),
        sa.Index("ix_drafts_account_id_notice_message_id", "account_id", "notice_message_id"),
        sa.Index("ix_drafts_notice_bot_id_notice_message_id", "notice_bot_id", "notice_message_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    chat_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    # the job that wrote it (skipped, reason `drafted`) and the one that sends it
    reply_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("replies.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    sent_reply_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("replies.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending")
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)  # what the twin wrote
    final_text: Mapped[str | None] = mapped_column(sa.Text)  # what the owner sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The note in the owner's Saved Messages that shows it (answered with +, - or a text):
    # its random id stored with the draft, before it is sent, so it is never posted twice.
    notice_random_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    notice_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Where the note goes, decided (and stored) before it is first sent, so a resend after a
    # crash takes the same way: "saved" (Saved Messages) or "bot" (`notice_bot_id`, a bot of
    # the twin's, with Send / Edit / Skip buttons); None: not decided yet
    notice_route: Mapped[str | None] = mapped_column(sa.String(8))
    notice_bot_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("accounts.id", ondelete="SET NULL")
    )
