"""Per-account settings overrides, style profiles and the event log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from twin.db.base import utcnow
from twin.db.records import EventRecord, StyleProfileRecord
from twin.db.repo._base import RepoBase, conflict_on_integrity
from twin.db.tables import AccountSettings, Event, StyleProfile

S = AccountSettings.__table__
P = StyleProfile.__table__
V = Event.__table__


class MiscMixin(RepoBase):
    # --- settings overrides ----------------------------------------------------------------

    async def get_settings(self, account_id: int) -> dict[str, Any]:
        """The account's overrides of [twin]/[schedule]/[humanize] ({} when none)."""
        async with self._tx() as session:
            data = (
                await session.execute(sa.select(S.c.data).where(S.c.account_id == account_id))
            ).scalar_one_or_none()
        return dict(data or {})

    async def put_settings(self, account_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the account's overrides (validation is the caller's job)."""
        await self._upsert(S, account_id, {"data": dict(data)})
        return dict(data)

    # --- style profiles --------------------------------------------------------------------

    async def get_style_profile(self, account_id: int) -> StyleProfileRecord | None:
        async with self._tx() as session:
            row = (
                await session.execute(sa.select(P).where(P.c.account_id == account_id))
            ).first()
        return None if row is None else StyleProfileRecord.from_row(row._mapping)

    async def put_style_profile(
        self,
        account_id: int,
        data: Mapping[str, Any],
        cursor: Mapping[str, Any] | None = None,
    ) -> StyleProfileRecord:
        """Replace the profile and its build cursor (None = build finished/not resumable)."""
        row = await self._upsert(
            P, account_id, {"data": dict(data), "cursor": None if cursor is None else dict(cursor)}
        )
        return StyleProfileRecord.from_row(row)

    async def _upsert(
        self, table: sa.Table, account_id: int, values: dict[str, Any]
    ) -> Mapping[str, Any]:
        values = {**values, "updated_at": utcnow()}
        async with self._tx() as session:
            with conflict_on_integrity(f"account {account_id} does not exist"):
                insert = self._insert(session, table).values(account_id=account_id, **values)
                statement = insert.on_conflict_do_update(
                    index_elements=["account_id"], set_=values
                ).returning(*table.c)
                row = (await session.execute(statement)).one()
        return row._mapping

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
        values = {
            "type": type,
            "data": dict(data or {}),
            "account_id": account_id,
            "chat_id": chat_id,
        }
        statement = sa.insert(V).values(**values).returning(V.c.id)
        async with self._tx() as session:
            return int((await session.execute(statement)).scalar_one())

    async def events_since(
        self, last_id: int = 0, *, limit: int = 100, account_id: int | None = None
    ) -> list[EventRecord]:
        """Events with id > last_id, oldest first."""
        query = sa.select(V).where(V.c.id > last_id)
        if account_id is not None:
            query = query.where(V.c.account_id == account_id)
        async with self._tx() as session:
            rows = await session.execute(query.order_by(V.c.id).limit(limit))
        return [EventRecord.from_row(row._mapping) for row in rows]

    async def last_event_id(self) -> int:
        async with self._tx() as session:
            return int((await session.execute(sa.select(sa.func.max(V.c.id)))).scalar() or 0)
