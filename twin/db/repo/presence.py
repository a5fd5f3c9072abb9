"""The owner's last activity per account: messages from any device, read receipts and online
status (owner_activity, one row per account)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import OwnerActivityRecord
from twin.db.repo._base import RepoBase
from twin.db.tables import OwnerActivity

A = OwnerActivity.__table__


class PresenceMixin(RepoBase):
    async def note_owner_activity(
        self, account_id: int, active_at: datetime
    ) -> OwnerActivityRecord:
        """The owner was active at `active_at` (a message, a read); an earlier time than the one
        stored changes nothing."""
        return await self._run(lambda c: self._note_owner_activity(c, account_id, active_at))

    def _note_owner_activity(
        self, c: Connection, account_id: int, active_at: datetime
    ) -> OwnerActivityRecord:
        return self._upsert_activity(c, account_id, active_at, {})

    async def set_owner_status(
        self, account_id: int, active_at: datetime, online_until: datetime | None
    ) -> OwnerActivityRecord:
        """The owner's online status as Telegram reports it: online until `online_until`, or
        offline (None) and last online at `active_at`."""
        return await self._run(
            lambda c: self._set_owner_status(c, account_id, active_at, online_until)
        )

    def _set_owner_status(
        self, c: Connection, account_id: int, active_at: datetime, online_until: datetime | None
    ) -> OwnerActivityRecord:
        return self._upsert_activity(c, account_id, active_at, {"online_until": online_until})

    def _upsert_activity(
        self, c: Connection, account_id: int, active_at: datetime, values: dict[str, Any]
    ) -> OwnerActivityRecord:
        c.execute(
            self._insert(c, A)
            .values(account_id=account_id)
            .on_conflict_do_nothing(index_elements=["account_id"])
        )
        column = A.c.active_at
        value = sa.literal(active_at, type_=column.type)
        later = sa.case((column.is_(None), value), (column < value, value), else_=column)
        statement = (
            sa.update(A)
            .where(A.c.account_id == account_id)
            .values(active_at=later, **values)
            .returning(*A.c)
        )
        return OwnerActivityRecord.from_row(c.execute(statement).one()._mapping)

    async def owner_activity(self, account_id: int) -> OwnerActivityRecord | None:
        return await self._read(lambda c: self._owner_activity(c, account_id))

    def _owner_activity(self, c: Connection, account_id: int) -> OwnerActivityRecord | None:
        row = c.execute(sa.select(A).where(A.c.account_id == account_id)).first()
        return None if row is None else OwnerActivityRecord.from_row(row._mapping)
