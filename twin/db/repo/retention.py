"""Retention (`[storage] retention_days`): what people wrote goes after N days — the texts and
transcripts of messages, the texts of reply jobs and of decided drafts — while every row stays,
so the statistics (counted from the rows: states, dates, tokens, costs) do not change. A
pending draft, and the corrections the owner made (the twin's examples, deleted by the owner
through the API), are kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.repo._base import RepoBase
from twin.db.repo.replies import _UNFINISHED
from twin.db.tables import Message, Reply
from twin.db.tables_drafts import Draft

PURGE_BATCH = 1000  # rows per transaction
M = Message.__table__
R = Reply.__table__
D = Draft.__table__


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows had (or would have had) their texts removed, per kind."""

    messages: int
    replies: int
    drafts: int

    @property
    def total(self) -> int:
        return self.messages + self.replies + self.drafts


class RetentionMixin(RepoBase):
    async def purge_texts(self, before: datetime, *, dry_run: bool = False) -> Purged:
        """Remove the texts older than `before` (or only count them, with `dry_run`)."""
        old_messages = sa.and_(
            M.c.date < before, sa.or_(M.c.text.is_not(None), M.c.transcript.is_not(None))
        )
        old_replies = sa.and_(
            R.c.created_at < before, R.c.text.is_not(None), R.c.state.not_in(_UNFINISHED)
        )
        old_drafts = sa.and_(
            D.c.created_at < before,
            D.c.state != "pending",
            sa.or_(D.c.text != "", D.c.final_text.is_not(None)),
        )

        def count(c: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
            query = sa.select(sa.func.count()).select_from(table).where(where)
            return int(c.execute(query).scalar_one())

        if dry_run:
            return await self._read(
                lambda c: Purged(
                    count(c, M, old_messages), count(c, R, old_replies), count(c, D, old_drafts)
                )
            )
        # In batches, each its own short transaction: a first purge over years of history
        # never holds the database's write lock for long.
        return Purged(
            await self._in_batches(M, old_messages, {"text": None, "transcript": None}),
            await self._in_batches(R, old_replies, {"text": None}),
            await self._in_batches(D, old_drafts, {"text": "", "final_text": None}),
        )

    async def _in_batches(
        self, table: sa.Table, where: sa.ColumnElement[bool], values: dict[str, object]
    ) -> int:
        batch = sa.select(table.c.id).where(where).limit(PURGE_BATCH).scalar_subquery()
        statement = sa.update(table).where(table.c.id.in_(batch)).values(**values)
        done = 0
        while True:
            changed = await self._run(lambda c: c.execute(statement).rowcount or 0)
            done += changed
            if changed < PURGE_BATCH:
                return done
