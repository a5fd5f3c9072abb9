"""Chats: dialogs of an account with pause state, per-chat overrides and rolling summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
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
    "takeover_started_at",
    "channel_data",
)


# Statements built once (see messages.py); UPDATEs take their SET columns from the parameters.
_BY_PEER = (C.c.account_id == sa.bindparam("_account_id")) & (
    C.c.peer_id == sa.bindparam("_peer_id")
)
_SELECT = prepared(sa.select(C).where(C.c.id == sa.bindparam("_chat_id")))
_SELECT_BY_PEER = prepared(sa.select(C).where(_BY_PEER))
_UPDATE = prepared(sa.update(C).where(C.c.id == sa.bindparam("_chat_id")).returning(*C.c))
_UPDATE_BY_PEER = prepared(sa.update(C).where(_BY_PEER).returning(*C.c))
_insert_chat: dict[str, Any] = {}  # per dialect: INSERT … ON CONFLICT DO NOTHING RETURNING


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
        external_id: str | None = None,
    ) -> tuple[ChatRecord, bool]:
        """Create the chat or refresh its descriptive fields (None = leave as is).

        Returns the chat and whether it was created; safe under concurrent callers.
        """
        return await self._run(
            lambda c: self._upsert_chat(
                c,
                account_id,
                peer_id,
                kind=kind,
                title=title,
                username=username,
                is_contact=is_contact,
                is_bot=is_bot,
                external_id=external_id,
            )
        )

    def _upsert_chat(
        self,
        c: Connection,
        account_id: int,
        peer_id: int,
        *,
        kind: str | None = None,
        title: str | None = None,
        username: str | None = None,
        is_contact: bool | None = None,
        is_bot: bool | None = None,
        external_id: str | None = None,
    ) -> tuple[ChatRecord, bool]:
        given = {
            key: value
            for key, value in {
                "kind": kind,
                "title": title,
                "username": username,
                "is_contact": is_contact,
                "is_bot": is_bot,
                "external_id": external_id,
            }.items()
            if value is not None
        }
        where = {"_account_id": account_id, "_peer_id": peer_id}
        # Most messages come from a known chat whose description did not change: read first,
        # and write only what differs.
        row = c.execute(_SELECT_BY_PEER, where).first()
        if row is None:
            insert = _insert_chat.get(c.dialect.name)
            if insert is None:
                insert = _insert_chat[c.dialect.name] = prepared(
                    self._insert(c, C)
                    .on_conflict_do_nothing(index_elements=["account_id", "peer_id"])
                    .returning(*C.c)
                )
            row = c.execute(insert, {"account_id": account_id, "peer_id": peer_id, **given}).first()
            if row is not None:
                return ChatRecord.from_row(row._mapping), True
            row = c.execute(_SELECT_BY_PEER, where).one()  # created meanwhile by another writer
        changed = {key: value for key, value in given.items() if row._mapping[key] != value}
        if changed:
            row = c.execute(_UPDATE_BY_PEER, {**changed, **where}).one()
        return ChatRecord.from_row(row._mapping), False

    async def delete_chat(self, chat_id: int) -> bool:
        """Delete a conversation with its messages and reply jobs (ON DELETE CASCADE; its
        events stay, without the chat). False if it did not exist."""
        return await self._run(
            lambda c: c.execute(sa.delete(C).where(C.c.id == chat_id)).rowcount > 0
        )

    async def get_chat(self, chat_id: int) -> ChatRecord:
        return await self._read(lambda c: self._get_chat(c, chat_id))

    def _get_chat(self, c: Connection, chat_id: int) -> ChatRecord:
        row = c.execute(_SELECT, {"_chat_id": chat_id}).first()
        if row is None:
            raise NotFound(f"chat {chat_id} does not exist")
        return ChatRecord.from_row(row._mapping)

    async def get_chat_by_peer(self, account_id: int, peer_id: int) -> ChatRecord:
        return await self._one_chat(
            (C.c.account_id == account_id) & (C.c.peer_id == peer_id),
            f"chat with peer {peer_id} of account {account_id}",
        )

    async def _one_chat(self, where: sa.ColumnElement[bool], what: str) -> ChatRecord:
        def work(connection: Connection) -> ChatRecord:
            row = connection.execute(sa.select(C).where(where)).first()
            if row is None:
                raise NotFound(f"{what} does not exist")
            return ChatRecord.from_row(row._mapping)

        return await self._read(work)

    async def list_chats(
        self, account_id: int, *, limit: int = 50, offset: int = 0
    ) -> list[ChatRecord]:
        """Chats of an account, most recent activity first."""
        activity = sa.func.coalesce(
            _later(C.c.last_incoming_at, C.c.last_outgoing_at), C.c.created_at
        )
        query = (
            sa.select(C)
            .where(C.c.account_id == account_id)
            .order_by(activity.desc(), C.c.id.desc())
            .limit(limit)
            .offset(offset)
        )

        def work(connection: Connection) -> list[ChatRecord]:
            return [ChatRecord.from_row(row._mapping) for row in connection.execute(query)]

        return await self._read(work)

    async def count_chats(self, account_id: int) -> int:
        query = sa.select(sa.func.count()).select_from(C).where(C.c.account_id == account_id)

        def work(connection: Connection) -> int:
            return int(connection.execute(query).scalar_one())

        return await self._read(work)

    async def update_chat(self, chat_id: int, **fields: Any) -> ChatRecord:
        """Set any of: kind, title, username, is_contact, is_bot, paused_until, overrides,
        summary, summary_upto_message_id, last_incoming_at, last_outgoing_at,
        last_owner_activity_at, last_away_at."""
        check_fields(fields, _UPDATABLE, "update_chat")
        if not fields:
            return await self.get_chat(chat_id)
        return await self._run(lambda c: self._update_chat_by_id(c, chat_id, **fields))

    def _update_chat_by_id(self, c: Connection, chat_id: int, **fields: Any) -> ChatRecord:
        check_fields(fields, _UPDATABLE, "update_chat")
        if not fields:
            return self._get_chat(c, chat_id)
        with conflict_on_integrity(f"cannot update chat {chat_id}"):
            row = c.execute(_UPDATE, {**fields, "_chat_id": chat_id}).first()
        if row is None:
            raise NotFound(f"chat {chat_id} does not exist")
        return ChatRecord.from_row(row._mapping)

    async def set_paused(self, account_id: int, peer_id: int, until: datetime | None) -> ChatRecord:
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

        def work(connection: Connection) -> ChatRecord:
            with conflict_on_integrity(f"cannot update {what}"):
                row = connection.execute(statement).first()
            if row is None:
                raise NotFound(f"{what} does not exist")
            return ChatRecord.from_row(row._mapping)

        return await self._run(work)
