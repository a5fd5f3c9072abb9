"""Conversations across channels (the admin app's list): every stored chat of every account
and channel instance, newest activity first, with what the owner filters on — paused, handed
to the owner (the newest reply job escalated), failed (a reply job failed and not retried) —
and a search over the title, username, the channel's conversation id and the messages' texts
and transcripts (case-insensitive, Unicode: `casefold` on SQLite, `lower` on PostgreSQL).

What each twin message was decided from (the reply jobs of a page of history) is
`reply_details`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.base import SQLITE_FOLD
from twin.db.repo._base import RepoBase
from twin.db.repo.chats import _later
from twin.db.tables import Account, Chat, Message, Reply

A = Account.__table__
C = Chat.__table__
M = Message.__table__
R = Reply.__table__

ConversationState = Literal["paused", "escalated", "failed"]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    chat_id: int
    account: str
    channel: str
    peer_id: int
    kind: str
    title: str | None
    username: str | None
    external_id: str | None
    paused_until: datetime | None
    last_activity_at: datetime
    last_text: str | None
    escalated: bool
    failed: int  # failed reply jobs


@dataclass(frozen=True, slots=True)
class ReplyDetail:
    """One reply job as the conversation view explains it."""

    id: int
    state: str
    reason: str | None
    failure: str | None
    attempts: int
    decision: dict[str, Any]
    flags: dict[str, Any]
    voice: bool
    reply_at: datetime
    created_at: datetime
    finished_at: datetime | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


class ConversationsMixin(RepoBase):
    async def list_conversations(
        self,
        *,
        account_ids: Sequence[int] | None = None,
        peer_id: int | None = None,
        channel: str | None = None,
        state: ConversationState | None = None,
        search: str | None = None,
        now: datetime,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ConversationRow], int]:
        """A page of conversations (newest activity first) and how many match in all."""

        def work(c: Connection) -> tuple[list[ConversationRow], int]:
            fold, needle = self._folding(c, search or "")
            activity = sa.func.coalesce(
                _later(C.c.last_incoming_at, C.c.last_outgoing_at), C.c.created_at
            )
            newest_reason = (
                sa.select(R.c.reason)
                .where(R.c.chat_id == C.c.id)
                .order_by(R.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            failed = (
                sa.select(sa.func.count())
                .where(R.c.chat_id == C.c.id, R.c.state == "failed")
                .scalar_subquery()
            )
            last_text = (
                sa.select(sa.func.coalesce(M.c.text, M.c.transcript))
                .where(M.c.chat_id == C.c.id)
                .order_by(M.c.date.desc(), M.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            where: list[Any] = []
            if account_ids is not None:
                where.append(C.c.account_id.in_(list(account_ids)))
            if peer_id is not None:
                where.append(C.c.peer_id == peer_id)
            if channel is not None:
                where.append(A.c.channel == channel)
            if state == "paused":
                where.append(C.c.paused_until > now)
            elif state == "escalated":
                where.append(newest_reason == "escalated")
            elif state == "failed":
                where.append(failed > 0)
            if search:
                matched = sa.exists().where(
                    M.c.chat_id == C.c.id,
                    sa.or_(
                        fold(M.c.text).contains(needle, autoescape=True),
                        fold(M.c.transcript).contains(needle, autoescape=True),
                    ),
                )
                where.append(
                    sa.or_(
                        *(
                            fold(column).contains(needle, autoescape=True)
                            for column in (C.c.title, C.c.username, C.c.external_id)
                        ),
                        matched,
                    )
                )
            joined = C.join(A, A.c.id == C.c.account_id)
            query = (
                sa.select(
                    sa.func.count().over().label("total"),
                    C.c.id,
                    A.c.name,
                    A.c.channel,
                    C.c.peer_id,
                    C.c.kind,
                    C.c.title,
                    C.c.username,
                    C.c.external_id,
                    C.c.paused_until,
                    activity.label("activity"),
                    last_text.label("last_text"),
                    newest_reason.label("newest_reason"),
                    failed.label("failed"),
                )
                .select_from(joined)
                .where(*where)
                .order_by(activity.desc(), C.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
            found = c.execute(query).all()
            rows = [
                ConversationRow(
                    chat_id=row.id,
                    account=row.name,
                    channel=row.channel,
                    peer_id=row.peer_id,
                    kind=row.kind,
                    title=row.title,
                    username=row.username,
                    external_id=row.external_id,
                    paused_until=row.paused_until,
                    last_activity_at=row.activity,
                    last_text=row.last_text,
                    escalated=row.newest_reason == "escalated",
                    failed=int(row.failed or 0),
                )
                for row in found
            ]
            if found:
                total = int(found[0].total)
            elif offset:  # a page past the end: count them
                total = c.execute(
                    sa.select(sa.func.count()).select_from(joined).where(*where)
                ).scalar_one()
            else:
                total = 0
            return rows, int(total)

        return await self._read(work)

    def _folding(self, c: Connection, search: str) -> tuple[Any, str]:
        """How a column and the search are folded to compare without case: on SQLite both
        by Python's `casefold`; on PostgreSQL both by `lower()` — under the ICU root collation
        when the server has it, so a database created with the `C` locale folds every script
        too (its own `lower()` would fold ASCII only)."""
        if not self._is_postgres(c):
            return (lambda column: getattr(sa.func, SQLITE_FOLD)(column)), search.casefold()
        icu = getattr(self, "_icu_collation", None)
        if icu is None:
            icu = self._icu_collation = bool(
                c.execute(
                    sa.text(
                        "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')"
                    )
                ).scalar()
            )
        if icu:
            return (lambda column: sa.func.lower(column.collate("und-x-icu"))), search.lower()
        return (lambda column: sa.func.lower(column)), search.lower()

    async def reply_details(self, reply_ids: Sequence[int]) -> dict[int, ReplyDetail]:
        """The reply jobs by id (those that exist)."""
        if not reply_ids:
            return {}
        query = sa.select(R).where(R.c.id.in_(sorted(set(reply_ids))))

        def work(c: Connection) -> dict[int, ReplyDetail]:
            return {
                row.id: ReplyDetail(
                    id=row.id,
                    state=row.state,
                    reason=row.reason,
                    failure=row.failure,
                    attempts=row.attempts,
                    decision=dict(row.decision or {}),
                    flags=dict(row.flags or {}),
                    voice=bool(row.voice),
                    reply_at=row.reply_at,
                    created_at=row.created_at,
                    finished_at=row.finished_at,
                    prompt_tokens=row.prompt_tokens,
                    completion_tokens=row.completion_tokens,
                    cost_usd=row.cost_usd,
                )
                for row in c.execute(query)
            }

        return await self._read(work)
