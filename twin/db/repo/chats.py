"""Chats: dialogs of an account with pause state, per-chat overrides and rolling summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from twin.db.records import ChatRecord
from twin.db.repo._base import RepoBase, check_fields, conflict_on_integrity
from twin.db.tables import Chat
from twin.errors import NotFound

C = Chat.__table__

_DESCRIPTIVE = ("kind", "title", "username", "is_contact", "is_bot")
_UPDATABLE = (
    *_DESCRIPTIVE,
    "paused_until",
    "overrides",
    "summary",
    "summary_upto_message_id",
    "last_incoming_at",
    "last_outgoing_at",
    "last_owner_activity_at",
    "last_away_at",
)


def _later(a: sa.ColumnElement[Any], b: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The later of two nullable timestamps, portable (GREATEST/MAX treat NULL differently)."""
    return sa.case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)


class ChatsMixin(RepoBase):
    async def upsert_chat(
        self,
        account_id: int,
        peer_id: int,
        *,
        kind: str | None = None,
        title: str | None = None,
        username: str | None = None,
        is_contact: bool | None = None,
        is_bot: bool | None = None,
    ) -> tuple[ChatRecord, bool]:
        """Create the chat or refresh its descriptive fields (None = leave as is).

        Returns the chat and whether it was created; safe under concurrent callers.
        """
        given = {
            key: value
            for key, value in {
                "kind": kind, "title": title, "username": username,
                "is_contact": is_contact, "is_bot": is_bot,
            }.items()
            if value is not None
        }
        async with self._tx() as session:
            insert = (
                self._insert(session, C)
                .values(account_id=account_id, peer_id=peer_id, **given)
                .on_conflict_do_nothing(index_elements=["account_id", "peer_id"])
                .returning(*C.c)
            )
            row = (await session.execute(insert)).first()
            if row is not None:
                return ChatRecord.from_row(row._mapping), True
            where = (C.c.account_id == account_id) & (C.c.peer_id == peer_id)
            if given:
                statement: Any = sa.update(C).where(where).values(**given).returning(*C.c)
            else:
                statement = sa.select(C).where(where)
            row = (await session.execute(statement)).one()
        return ChatRecord.from_row(row._mapping), False

    async def get_chat(self, chat_id: int) -> ChatRecord:
        return await self._one_chat(C.c.id == chat_id, f"chat {chat_id}")

    async def get_chat_by_peer(self, account_id: int, peer_id: int) -> ChatRecord:
        return await self._one_chat(
            (C.c.account_id == account_id) & (C.c.peer_id == peer_id),
            f"chat with peer {peer_id} of account {account_id}",
        )

    async def _one_chat(self, where: sa.ColumnElement[bool], what: str) -> ChatRecord:
        async with self._tx() as session:
            row = (await session.execute(sa.select(C).where(where))).first()
        if row is None:
            raise NotFound(f"{what} does not exist")
        return ChatRecord.from_row(row._mapping)

    async def list_chats(
        self, account_id: int, *, limit: int = 50, offset: int = 0
    ) -> list[ChatRecord]:
        """Chats of an account, most recent activity first."""
        activity = sa.func.coalesce(_later(C.c.last_incoming_at, C.c.last_outgoing_at),
                                    C.c.created_at)
        query = (
            sa.select(C)
            .where(C.c.account_id == account_id)
            .order_by(activity.desc(), C.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._tx() as session:
            rows = await session.execute(query)
        return [ChatRecord.from_row(row._mapping) for row in rows]

    async def count_chats(self, account_id: int) -> int:
        query = sa.select(sa.func.count()).select_from(C).where(C.c.account_id == account_id)
        async with self._tx() as session:
            return int((await session.execute(query)).scalar_one())

    async def update_chat(self, chat_id: int, **fields: Any) -> ChatRecord:
        """Set any of: kind, title, username, is_contact, is_bot, paused_until, overrides,
        summary, summary_upto_message_id, last_incoming_at, last_outgoing_at,
        last_owner_activity_at, last_away_at."""
        check_fields(fields, _UPDATABLE, "update_chat")
        if not fields:
            return await self.get_chat(chat_id)
        return await self._update_chat(C.c.id == chat_id, fields, f"chat {chat_id}")

    async def set_paused(
        self, account_id: int, peer_id: int, until: datetime | None
    ) -> ChatRecord:
        """Pause the twin in a chat until `until` (None resumes it)."""
        return await self._update_chat(
            (C.c.account_id == account_id) & (C.c.peer_id == peer_id),
            {"paused_until": until},
            f"chat with peer {peer_id} of account {account_id}",
        )

    async def _update_chat(
        self, where: sa.ColumnElement[bool], values: dict[str, Any], what: str
    ) -> ChatRecord:
        statement = sa.update(C).where(where).values(**values).returning(*C.c)
        async with self._tx() as session:
            with conflict_on_integrity(f"cannot update {what}"):
                row = (await session.execute(statement)).first()
        if row is None:
            raise NotFound(f"{what} does not exist")
        return ChatRecord.from_row(row._mapping)
