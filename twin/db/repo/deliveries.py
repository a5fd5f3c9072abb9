"""Outbound webhooks (webhook_deliveries): queued in the transaction that stores what they
report, claimed with a lease (several processes never post one twice at once), finished as
delivered, retried later or dead."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import DeliveryRecord
from twin.db.repo._base import RepoBase
from twin.db.tables import WebhookDelivery
from twin.errors import Conflict, NotFound

D = WebhookDelivery.__table__
ERROR_CHARS = 500


class DeliveriesMixin(RepoBase):
    def _add_delivery(
        self,
        c: Connection,
        *,
        account_id: int,
        key: str,
        url: str,
        payload: dict[str, Any],
        now: datetime,
        chat_id: int | None = None,
        reply_id: int | None = None,
    ) -> int:
        """Queue one webhook, due at once (inside the transaction of what it reports)."""
        values = {
            "account_id": account_id,
            "chat_id": chat_id,
            "reply_id": reply_id,
            "key": key,
            "url": url,
            "payload": payload,
            "state": "pending",
            "next_attempt_at": now,
            "created_at": now,
        }
        return int(c.execute(sa.insert(D).values(**values).returning(D.c.id)).scalar_one())

    async def claim_due_deliveries(
        self, now: datetime, lease: timedelta, limit: int = 20
    ) -> list[DeliveryRecord]:
        """Pending deliveries due now, oldest first, leased until `now + lease` (their next
        attempt time: a process that dies mid-post leaves them due again after it)."""

        def work(c: Connection) -> list[DeliveryRecord]:
            due = (
                sa.select(D.c.id)
                .where(D.c.state == "pending", D.c.next_attempt_at <= now)
                .order_by(D.c.next_attempt_at, D.c.id)
                .limit(limit)
            )
            if self._is_postgres(c):
                due = due.with_for_update(skip_locked=True)
            ids = list(c.execute(due).scalars())
            if not ids:
                return []
            c.execute(sa.update(D).where(D.c.id.in_(ids)).values(next_attempt_at=now + lease))
            rows = c.execute(sa.select(D).where(D.c.id.in_(ids)).order_by(D.c.id))
            return [DeliveryRecord.from_row(row._mapping) for row in rows]

        return await self._run(work)

    async def delivery_done(self, delivery_id: int, at: datetime, status: int) -> None:
        await self._run(
            lambda c: c.execute(
                sa.update(D)
                .where(D.c.id == delivery_id, D.c.state == "pending")
                .values(
                    state="delivered",
                    delivered_at=at,
                    next_attempt_at=None,
                    attempts=D.c.attempts + 1,
                    last_status=status,
                    last_error=None,
                )
            )
        )

    async def delivery_failed(
        self, delivery_id: int, error: str, status: int | None, next_attempt_at: datetime | None
    ) -> None:
        """An attempt failed: due again at `next_attempt_at`, or dead (None)."""
        values: dict[str, Any] = {
            "attempts": D.c.attempts + 1,
            "last_error": error[:ERROR_CHARS],
            "last_status": status,
            "next_attempt_at": next_attempt_at,
        }
        if next_attempt_at is None:
            values["state"] = "dead"
        await self._run(
            lambda c: c.execute(
                sa.update(D).where(D.c.id == delivery_id, D.c.state == "pending").values(**values)
            )
        )

    async def list_deliveries(
        self,
        state: str | None = None,
        *,
        account_id: int | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[DeliveryRecord]:
        """Newest first (`before`: ids below it, for paging)."""
        query = sa.select(D).order_by(D.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(D.c.state == state)
        if account_id is not None:
            query = query.where(D.c.account_id == account_id)
        if before is not None:
            query = query.where(D.c.id < before)
        return await self._read(
            lambda c: [DeliveryRecord.from_row(row._mapping) for row in c.execute(query)]
        )

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord:
        def work(c: Connection) -> DeliveryRecord:
            row = c.execute(sa.select(D).where(D.c.id == delivery_id)).first()
            if row is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            return DeliveryRecord.from_row(row._mapping)

        return await self._read(work)

    async def redeliver(self, delivery_id: int, now: datetime) -> DeliveryRecord:
        """Queue a delivered or dead delivery again (same key: the receiver can tell); a pending
        one is already queued (Conflict)."""

        def work(c: Connection) -> DeliveryRecord:
            row = c.execute(sa.select(D).where(D.c.id == delivery_id)).first()
            if row is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            if row.state == "pending":
                raise Conflict(f"webhook delivery {delivery_id} is queued already")
            c.execute(
                sa.update(D)
                .where(D.c.id == delivery_id)
                .values(state="pending", next_attempt_at=now, created_at=now)
            )
            return DeliveryRecord.from_row(
                c.execute(sa.select(D).where(D.c.id == delivery_id)).one()._mapping
            )

        return await self._run(work)

    async def next_delivery_at(self) -> datetime | None:
        query = sa.select(sa.func.min(D.c.next_attempt_at)).where(D.c.state == "pending")
        return await self._read(lambda c: c.execute(query).scalar())
