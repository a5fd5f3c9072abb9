"""Per-account settings overrides, style profiles and the event log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
from twin.db.records import EventRecord, StyleProfileRecord
from twin.db.repo._base import RepoBase, conflict_on_integrity
from twin.db.tables import Account, AccountSettings, Chat, Event, Message, StyleProfile, Twin

S = AccountSettings.__table__
P = StyleProfile.__table__
V = Event.__table__
A = Account.__table__
C = Chat.__table__
M = Message.__table__

_SELECT_SETTINGS = prepared(
    sa.select(S.c.data).where(S.c.account_id == sa.bindparam("_account_id"))
)
T = Twin.__table__
# The twin an account answers as: its own, else the one named "default".
_TWIN_OF_ACCOUNT = sa.func.coalesce(
    sa.select(A.c.twin_id).where(A.c.id == sa.bindparam("_account_id")).scalar_subquery(),
    sa.select(T.c.id).where(T.c.name == "default").scalar_subquery(),
)
_SELECT_STYLE = prepared(sa.select(P).where(P.c.twin_id == _TWIN_OF_ACCOUNT))
_SELECT_STYLE_VERSION = prepared(sa.select(P.c.updated_at).where(P.c.twin_id == _TWIN_OF_ACCOUNT))
_INSERT_EVENT = prepared(sa.insert(V).returning(V.c.id))
# Events with the public names of their account and chat (two primary-key lookups each).
_EVENTS = (
    sa.select(V, A.c.name.label("account"), A.c.channel.label("channel"), C.c.peer_id.label("chat"))
    .select_from(V.outerjoin(A, A.c.id == V.c.account_id).outerjoin(C, C.c.id == V.c.chat_id))
    .order_by(V.c.id)
)


class MiscMixin(RepoBase):
    # --- settings overrides ----------------------------------------------------------------

    async def get_settings(self, account_id: int) -> dict[str, Any]:
        """The account's overrides of [twin]/[schedule]/[humanize] ({} when none)."""
        return await self._read(lambda c: self._get_settings(c, account_id))

    def _get_settings(self, c: Connection, account_id: int) -> dict[str, Any]:
        data = c.execute(_SELECT_SETTINGS, {"_account_id": account_id}).scalar_one_or_none()
        return dict(data or {})

    async def put_settings(self, account_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the account's overrides (validation is the caller's job)."""
        await self._upsert(S, account_id, {"data": dict(data)})
        return dict(data)

    # --- style profiles --------------------------------------------------------------------

    async def get_style_profile(self, account_id: int) -> StyleProfileRecord | None:
        return await self._read(lambda c: self._get_style_profile(c, account_id))

    def _get_style_profile(self, c: Connection, account_id: int) -> StyleProfileRecord | None:
        row = c.execute(_SELECT_STYLE, {"_account_id": account_id}).first()
        return None if row is None else StyleProfileRecord.from_row(row._mapping)

    async def style_profile_version(self, account_id: int) -> datetime | None:
        """When the account's style profile was last written (None: there is none); lets a
        caller keep the parsed profile until it changes, whoever wrote it."""
        return await self._read(lambda c: self._style_profile_version(c, account_id))

    def _style_profile_version(self, c: Connection, account_id: int) -> datetime | None:
        return c.execute(_SELECT_STYLE_VERSION, {"_account_id": account_id}).scalar_one_or_none()

    async def twin_sent_ids(self, account_id: int, peer_id: int) -> set[int]:
        """The Telegram ids of the twin's own replies in a chat (not the owner's writing: the
        style build leaves them out)."""
        def work(c: Connection) -> set[int]:
            query = (
                sa.select(M.c.tg_message_id)
                .select_from(M.join(C, C.c.id == M.c.chat_id))
                .where(
                    M.c.account_id == account_id,
                    C.c.peer_id == peer_id,
                    M.c.direction == "outgoing",
                    M.c.reply_id.is_not(None),
                    M.c.tg_message_id.is_not(None),
                )
            )
            return set(c.execute(query).scalars())

        return await self._read(work)

    async def put_style_profile(
        self,
        account_id: int,
        data: Mapping[str, Any],
        cursor: Mapping[str, Any] | None = None,
    ) -> StyleProfileRecord:
        """Replace the style of the twin the account answers as, with its build cursor (None =
        build finished/not resumable)."""
        values = {
            "data": dict(data),
            "cursor": None if cursor is None else dict(cursor),
            "updated_at": self._clock.now(),
        }

        def work(connection: Connection) -> StyleProfileRecord:
            twin_id = connection.execute(
                sa.select(_TWIN_OF_ACCOUNT), {"_account_id": account_id}
            ).scalar_one_or_none()
            if twin_id is None:  # no twin set and no `default` yet (a fresh database)
                default = self._insert(connection, T).values(name="default", settings={}, voice={})
                connection.execute(default.on_conflict_do_nothing(index_elements=["name"]))
                twin_id = connection.execute(
                    sa.select(T.c.id).where(T.c.name == "default")
                ).scalar_one()
            insert = self._insert(connection, P).values(twin_id=twin_id, **values)
            statement = insert.on_conflict_do_update(
                index_elements=["twin_id"], set_=values
            ).returning(*P.c)
            return StyleProfileRecord.from_row(connection.execute(statement).one()._mapping)

        return await self._run(work)

    async def _upsert(
        self, table: sa.Table, account_id: int, values: dict[str, Any]
    ) -> Mapping[str, Any]:
        values = {**values, "updated_at": self._clock.now()}

        def work(connection: Connection) -> Mapping[str, Any]:
            with conflict_on_integrity(f"account {account_id} does not exist"):
                insert = self._insert(connection, table).values(account_id=account_id, **values)
                statement = insert.on_conflict_do_update(
                    index_elements=["account_id"], set_=values
                ).returning(*table.c)
                return connection.execute(statement).one()._mapping

        return await self._run(work)

    # --- events ----------------------------------------------------------------------------

    async def append_event(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int:
        """Append to the event log; returns the event id (the SSE Last-Event-ID)."""
        return await self._run(
            lambda c: self._append_event(c, type, data, account_id=account_id, chat_id=chat_id)
        )

    def _append_event(
        self,
        c: Connection,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int:
        values = {
            "type": type,
            "data": dict(data or {}),
            "account_id": account_id,
            "chat_id": chat_id,
        }
        return int(c.execute(_INSERT_EVENT, values).scalar_one())

    async def events_since(
        self, last_id: int = 0, *, limit: int = 100, account_id: int | None = None
    ) -> list[EventRecord]:
        """Events with id > last_id, oldest first, with their account's name and their chat's
        Telegram peer id (`account`, `chat`: None when the event has none)."""
        query = _EVENTS.where(V.c.id > last_id)
        if account_id is not None:
            query = query.where(V.c.account_id == account_id)
        query = query.limit(limit)

        def work(connection: Connection) -> list[EventRecord]:
            return [EventRecord.from_row(row._mapping) for row in connection.execute(query)]

        return await self._read(work)

    async def last_event_id(self) -> int:
        def work(connection: Connection) -> int:
            return int(connection.execute(sa.select(sa.func.max(V.c.id))).scalar() or 0)

        return await self._read(work)
