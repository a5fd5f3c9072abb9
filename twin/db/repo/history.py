"""A chat read back: its history as the API pages it (with each generated reply's usage on its
first bubble) and the conversation the brain reads for every reply (only the columns a prompt
needs)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
from twin.db.records import ChatRecord, Direction, MessageKind, MessageRecord, ReplyState
from twin.db.repo._base import RepoBase
from twin.db.tables import Chat, Message, Reply
from twin.errors import NotFound

C = Chat.__table__
M = Message.__table__
R = Reply.__table__

_USAGE = ("prompt_tokens", "completion_tokens", "cost_usd")
# History as the API shows it: a message's own usage (a voice note's transcription), and on the
# first bubble of a generated reply the reply's (tokens and cost of generating it).
_HISTORY_COLUMNS = [
    *(column for column in M.c if column.name not in _USAGE),
    *(
        sa.func.coalesce(
            M.c[name], sa.case((M.c.bubble_index == 0, R.c[name]), else_=sa.null())
        ).label(name)
        for name in _USAGE
    ),
]
_HISTORY_FROM = M.outerjoin(R, R.c.id == M.c.reply_id)
_SELECT_HISTORY = (
    sa.select(*_HISTORY_COLUMNS)
    .select_from(_HISTORY_FROM)
    .where(M.c.account_id == sa.bindparam("_account_id"), M.c.chat_id == sa.bindparam("_chat_id"))
    .order_by(M.c.date.desc(), M.c.id.desc())
    .limit(sa.bindparam("_limit"))
)
_CONVERSATION = prepared(
    sa.select(M.c.id, M.c.direction, M.c.state, M.c.kind, M.c.text, M.c.transcript, M.c.date)
    .where(M.c.account_id == sa.bindparam("_account_id"), M.c.chat_id == sa.bindparam("_chat_id"))
    .order_by(M.c.date.desc(), M.c.id.desc())
    .limit(sa.bindparam("_limit"))
)


class HistoryMixin(RepoBase):
    async def conversation_activity(
        self, account_id: int, since: datetime
    ) -> list[tuple[ChatRecord, int]]:
        """The instance's conversations with a message since `since`, most recent first, each
        with how many messages it received since then."""
        chats = (
            sa.select(C)
            .where(C.c.account_id == account_id, C.c.last_incoming_at >= since)
            .order_by(C.c.last_incoming_at.desc(), C.c.id.desc())
        )
        counts = (
            sa.select(M.c.chat_id, sa.func.count())
            .where(
                M.c.account_id == account_id,
                M.c.direction == Direction.INCOMING.value,
                M.c.date >= since,
            )
            .group_by(M.c.chat_id)
        )

        def work(c: Connection) -> list[tuple[ChatRecord, int]]:
            received = dict(c.execute(counts).tuples().all())
            return [
                (record, received.get(record.id, 0))
                for record in (ChatRecord.from_row(row._mapping) for row in c.execute(chats))
            ]

        return await self._read(work)

    async def history(
        self, account_id: int, chat_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> list[MessageRecord]:
        """Messages of a chat newest first (by date, then id); page with `before_id` = the
        last (oldest) message id of the previous page."""
        return await self._read(
            lambda c: self._history(c, account_id, chat_id, limit=limit, before_id=before_id)
        )

    def _history(
        self,
        c: Connection,
        account_id: int,
        chat_id: int,
        *,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[MessageRecord]:
        if before_id is None:
            rows = c.execute(
                _SELECT_HISTORY,
                {"_account_id": account_id, "_chat_id": chat_id, "_limit": limit},
            )
            return [MessageRecord.from_row(row._mapping) for row in rows]
        cursor = c.execute(
            sa.select(M.c.date, M.c.id).where(M.c.id == before_id, M.c.chat_id == chat_id)
        ).first()
        if cursor is None:
            raise NotFound(f"message {before_id} of chat {chat_id} does not exist")
        query = (
            sa.select(*_HISTORY_COLUMNS)
            .select_from(_HISTORY_FROM)
            .where(M.c.account_id == account_id, M.c.chat_id == chat_id)
            .where((M.c.date < cursor.date) | ((M.c.date == cursor.date) & (M.c.id < cursor.id)))
            .order_by(M.c.date.desc(), M.c.id.desc())
            .limit(limit)
        )
        return [MessageRecord.from_row(row._mapping) for row in c.execute(query)]

    async def conversation(
        self, account_id: int, chat_id: int, *, limit: int = 50
    ) -> list[ConversationRow]:
        """The newest `limit` messages of a chat as `history()` orders them, with only what a
        prompt needs (the brain reads up to 200 of them for every reply)."""
        return await self._read(lambda c: self._conversation(c, account_id, chat_id, limit=limit))

    def _conversation(
        self, c: Connection, account_id: int, chat_id: int, *, limit: int = 50
    ) -> list[ConversationRow]:
        rows = c.execute(
            _CONVERSATION, {"_account_id": account_id, "_chat_id": chat_id, "_limit": limit}
        )
        return [
            ConversationRow(
                id,
                Direction(direction),
                ReplyState(state),
                MessageKind(kind),
                text,
                transcript,
                date,
            )
            for id, direction, state, kind, text, transcript, date in rows
        ]


class ConversationRow(NamedTuple):
    """A message as the brain's prompt needs it (see `MessagesMixin.conversation`)."""

    id: int
    direction: Direction
    state: ReplyState
    kind: MessageKind
    text: str | None
    transcript: str | None
    date: datetime
