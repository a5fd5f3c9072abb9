"""The safety governor's storage: each account's mode (one row, no row = active) and the ledger
of the rare events it acts on. A mode change and its event are one transaction."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records_safety import AccountModeRecord, SafetyEventRecord
from twin.db.repo._base import RepoBase
from twin.db.tables import Message
from twin.db.tables_safety import AccountSafety, SafetyEvent
from twin.domain.safety import AccountMode

S = AccountSafety.__table__
E = SafetyEvent.__table__
M = Message.__table__

_DETAIL_CHARS = 500


class SafetyMixin(RepoBase):
    async def account_modes(self) -> dict[int, AccountModeRecord]:
        """Every account's mode that is not simply active-by-default (rows only)."""

        def work(c: Connection) -> dict[int, AccountModeRecord]:
            rows = c.execute(sa.select(S))
            return {row.account_id: AccountModeRecord.from_row(row._mapping) for row in rows}

        return await self._read(work)

    async def account_mode(self, account_id: int) -> AccountModeRecord | None:
        def work(c: Connection) -> AccountModeRecord | None:
            row = c.execute(sa.select(S).where(S.c.account_id == account_id)).first()
            return AccountModeRecord.from_row(row._mapping) if row is not None else None

        return await self._read(work)

    async def set_account_mode(
        self,
        account_id: int,
        mode: AccountMode,
        *,
        reason: str,
        set_by: str,
        at: datetime,
        notify_random_id: int | None = None,
    ) -> AccountModeRecord:
        """Store the account's mode and the `mode` event saying who changed it and why."""
        values = {
            "mode": mode.value,
            "reason": reason[:_DETAIL_CHARS],
            "set_by": set_by,
            "changed_at": at,
            "notify_random_id": notify_random_id,
            "notified": False,
        }

        def work(c: Connection) -> AccountModeRecord:
            updated = c.execute(sa.update(S).where(S.c.account_id == account_id).values(**values))
            if not updated.rowcount:
                c.execute(sa.insert(S).values(account_id=account_id, **values))
            c.execute(
                sa.insert(E).values(
                    account_id=account_id,
                    kind="mode",
                    category=mode.value,
                    detail=f"{set_by}: {reason}"[:_DETAIL_CHARS],
                    at=at,
                )
            )
            row = c.execute(sa.select(S).where(S.c.account_id == account_id)).one()
            return AccountModeRecord.from_row(row._mapping)

        return await self._run(work)

    async def mark_mode_notified(self, account_id: int, random_id: int) -> None:
        await self._run(
            lambda c: c.execute(
                sa.update(S)
                .where(S.c.account_id == account_id, S.c.notify_random_id == random_id)
                .values(notified=True)
            )
        )

    async def add_safety_event(
        self,
        account_id: int,
        kind: str,
        *,
        at: datetime,
        category: str | None = None,
        seconds: float | None = None,
        detail: str = "",
    ) -> None:
        await self._run(
            lambda c: c.execute(
                sa.insert(E).values(
                    account_id=account_id,
                    kind=kind,
                    category=category,
                    seconds=seconds,
                    detail=detail[:_DETAIL_CHARS],
                    at=at,
                )
            )
        )

    async def safety_events(
        self, account_id: int, since: datetime, *, limit: int = 1000
    ) -> list[SafetyEventRecord]:
        """The account's events since `since`, oldest first (the newest `limit`)."""

        def work(c: Connection) -> list[SafetyEventRecord]:
            query = (
                sa.select(E.c.kind, E.c.category, E.c.seconds, E.c.detail, E.c.at)
                .where(E.c.account_id == account_id, E.c.at >= since)
                .order_by(E.c.at.desc(), E.c.id.desc())
                .limit(limit)
            )
            rows = [SafetyEventRecord.from_row(row._mapping) for row in c.execute(query)]
            return rows[::-1]

        return await self._read(work)

    async def send_times(self, account_id: int, since: datetime) -> list[datetime]:
        """When the twin sent (or was sending) messages on the account since `since`: its
        outgoing bubbles, each with the random id persisted before its send."""

        def work(c: Connection) -> list[datetime]:
            query = (
                sa.select(M.c.created_at)
                .where(
                    M.c.account_id == account_id,
                    M.c.direction == "outgoing",
                    M.c.random_id.is_not(None),
                    M.c.state.in_(("sending", "sent")),
                    M.c.created_at >= since,
                )
                .order_by(M.c.created_at)
            )
            return list(c.execute(query).scalars())

        return await self._read(work)
