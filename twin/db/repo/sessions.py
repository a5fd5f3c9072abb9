"""Sessions of the conversation API (`/api/v1/conversation/*`): a user's conversations of a
channel instance, and one conversation's messages as pages, each with the job's judgement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.repo._base import RepoBase
from twin.db.tables import Chat, Message, Reply

C = Chat.__table__
M = Message.__table__
R = Reply.__table__


@dataclass(frozen=True, slots=True)
class SessionRow:
    chat_id: int
    peer_id: int
    session_id: str
    data: dict[str, Any]  # channel_data
    paused_until: datetime | None
    created_at: datetime
    updated_at: datetime | None  # the newest message's date
    messages: int


@dataclass(frozen=True, slots=True)
class TurnRow:
    id: int
    direction: str
    text: str
    date: datetime
    flags: dict[str, Any]  # the answering job's (intent, confidence …); {} for the user's


class SessionsMixin(RepoBase):
    async def sessions_of(self, account_id: int, user_id: str) -> list[SessionRow]:
        """The instance's conversations whose `channel_data.user_id` is `user_id`, newest
        first, with their message counts and last message date (one grouped query)."""
        counts = (
            sa.select(
                M.c.chat_id,
                sa.func.count().label("n"),
                sa.func.max(M.c.date).label("last"),
            )
            .group_by(M.c.chat_id)
            .subquery()
        )
        query = (
            sa.select(C, counts.c.n, counts.c.last)
            .select_from(C.outerjoin(counts, counts.c.chat_id == C.c.id))
            .where(C.c.account_id == account_id, C.c.channel_data["user_id"].as_string() == user_id)
            .order_by(sa.func.coalesce(counts.c.last, C.c.created_at).desc(), C.c.id.desc())
        )

        def work(c: Connection) -> list[SessionRow]:
            return [
                SessionRow(
                    row.id,
                    row.peer_id,
                    row.external_id or "",
                    dict(row.channel_data or {}),
                    row.paused_until,
                    row.created_at,
                    row.last,
                    int(row.n or 0),
                )
                for row in c.execute(query)
            ]

        return await self._read(work)

    async def turns(self, chat_id: int, *, limit: int, offset: int) -> tuple[list[TurnRow], int]:
        """A page of the conversation's messages, oldest first, and how many there are."""
        page = (
            sa.select(M.c.id, M.c.direction, M.c.text, M.c.transcript, M.c.date, R.c.flags)
            .select_from(M.outerjoin(R, R.c.id == M.c.reply_id))
            .where(M.c.chat_id == chat_id)
            .order_by(M.c.date, M.c.id)
            .limit(limit)
            .offset(offset)
        )
        total = sa.select(sa.func.count()).where(M.c.chat_id == chat_id)

        def work(c: Connection) -> tuple[list[TurnRow], int]:
            rows = [
                TurnRow(
                    row.id,
                    row.direction,
                    row.text or row.transcript or "",
                    row.date,
                    dict(row.flags or {}) if row.direction == "outgoing" else {},
                )
                for row in c.execute(page)
            ]
            return rows, int(c.execute(total).scalar_one())

        return await self._read(work)
