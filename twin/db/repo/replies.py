"""Reply jobs: durable, leased units of work of the reply pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from twin.db.base import utcnow
from twin.db.records import ReplyRecord, ReplyState
from twin.db.repo._base import RepoBase, check_fields, conflict_on_integrity
from twin.db.tables import Message, Reply
from twin.domain.models import TERMINAL_STATES
from twin.errors import Conflict, NotFound

R = Reply.__table__
M = Message.__table__

_UNFINISHED = tuple(s.value for s in ReplyState if s not in TERMINAL_STATES)
_TERMINAL = tuple(s.value for s in TERMINAL_STATES)
_UPDATABLE = (
    "state",
    "reason",
    "decision",
    "reply_at",
    "attempts",
    "next_attempt_at",
    "lease_until",
    "text",
    "flags",
    "voice",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "finished_at",
)


class RepliesMixin(RepoBase):
    async def create_reply(
        self,
        account_id: int,
        chat_id: int,
        *,
        reply_at: datetime,
        message_ids: Iterable[int] = (),
        state: ReplyState | str = ReplyState.SCHEDULED,
        reason: str | None = None,
        decision: Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
        voice: bool = False,
    ) -> ReplyRecord:
        """Create a reply job and link the chat's messages it answers (messages.reply_id)."""
        values = {
            "account_id": account_id,
            "chat_id": chat_id,
            "state": ReplyState(state).value,
            "reason": reason,
            "decision": dict(decision or {}),
            "flags": dict(flags or {}),
            "reply_at": reply_at,
            "voice": voice,
        }
        ids = list(dict.fromkeys(message_ids))
        async with self._tx() as session:
            row = (await session.execute(sa.insert(R).values(**values).returning(*R.c))).one()
            await self._link(session, row.id, chat_id, ids)
        return ReplyRecord.from_row(row._mapping)

    async def attach_messages(self, reply_id: int, message_ids: Iterable[int]) -> None:
        """Link more messages of the reply's chat to it (debounce: one answer for a burst)."""
        ids = list(dict.fromkeys(message_ids))
        async with self._tx() as session:
            chat_id = (
                await session.execute(sa.select(R.c.chat_id).where(R.c.id == reply_id))
            ).scalar_one_or_none()
            if chat_id is None:
                raise NotFound(f"reply {reply_id} does not exist")
            await self._link(session, reply_id, chat_id, ids)

    @staticmethod
    async def _link(session: Any, reply_id: int, chat_id: int, ids: list[int]) -> None:
        if not ids:
            return
        result = await session.execute(
            sa.update(M).where(M.c.id.in_(ids), M.c.chat_id == chat_id).values(reply_id=reply_id)
        )
        if result.rowcount != len(ids):
            raise NotFound(f"some of messages {ids} do not exist in chat {chat_id}")

    async def get_reply(self, reply_id: int) -> ReplyRecord:
        async with self._tx() as session:
            row = (await session.execute(sa.select(R).where(R.c.id == reply_id))).first()
        if row is None:
            raise NotFound(f"reply {reply_id} does not exist")
        return ReplyRecord.from_row(row._mapping)

    async def update_reply(
        self,
        reply_id: int,
        *,
        expect_state: ReplyState | str | Iterable[ReplyState | str] | None = None,
        **fields: Any,
    ) -> ReplyRecord:
        """Set reply fields. Moving to a terminal state also stamps `finished_at` and drops
        the lease unless given. With `expect_state`, the update happens only if the job is
        still in (one of) those states, else Conflict: e.g. the owner cancelled it meanwhile.
        """
        check_fields(fields, _UPDATABLE, "update_reply")
        if "state" in fields:
            fields["state"] = ReplyState(fields["state"]).value
            if fields["state"] in _TERMINAL:
                fields.setdefault("finished_at", utcnow())
                fields.setdefault("lease_until", None)
        where = [R.c.id == reply_id]
        if expect_state is not None:
            if isinstance(expect_state, str):
                expect_state = [expect_state]
            where.append(R.c.state.in_([ReplyState(s).value for s in expect_state]))
        if fields:
            statement: Any = sa.update(R).where(*where).values(**fields).returning(*R.c)
        else:
            statement = sa.select(R).where(*where)
        async with self._tx() as session:
            with conflict_on_integrity(f"cannot update reply {reply_id}"):
                row = (await session.execute(statement)).first()
        if row is not None:
            return ReplyRecord.from_row(row._mapping)
        current = await self.get_reply(reply_id)  # raises NotFound
        raise Conflict(f"reply {reply_id} is {current.state}, not {expect_state}")

    async def claim_due_replies(
        self, now: datetime, lease_seconds: float, limit: int = 10
    ) -> list[ReplyRecord]:
        """Lease up to `limit` due, unfinished jobs until now + lease_seconds (oldest first).

        Due: reply_at <= now, no back-off pending (next_attempt_at unset or <= now) and no live
        lease. Each claim counts an attempt. A job whose worker died becomes claimable again
        when its lease expires. Two concurrent claimers never get the same job: PostgreSQL
        locks candidates with FOR UPDATE SKIP LOCKED; SQLite serialises writers, and the
        claim is one conditional UPDATE.
        """
        lease_until = now + timedelta(seconds=lease_seconds)
        due = (
            sa.select(R.c.id)
            .where(
                R.c.state.in_(_UNFINISHED),
                R.c.reply_at <= now,
                sa.or_(R.c.next_attempt_at.is_(None), R.c.next_attempt_at <= now),
                sa.or_(R.c.lease_until.is_(None), R.c.lease_until <= now),
            )
            .order_by(R.c.reply_at, R.c.id)
            .limit(limit)
        )
        claim = sa.update(R).values(lease_until=lease_until, attempts=R.c.attempts + 1)
        async with self._tx() as session:
            if self._is_postgres(session):
                # A CTE is evaluated once, so the locked rows are exactly the updated ones.
                locked = due.with_for_update(skip_locked=True).cte("due")
                statement = claim.where(R.c.id == locked.c.id)
            else:
                statement = claim.where(R.c.id.in_(due.scalar_subquery()))
            rows = (await session.execute(statement.returning(*R.c))).all()
        claimed = [ReplyRecord.from_row(row._mapping) for row in rows]
        return sorted(claimed, key=lambda reply: (reply.reply_at, reply.id))

    async def unfinished_replies(self, account_id: int | None = None) -> list[ReplyRecord]:
        """Jobs not yet sent/skipped/failed/cancelled, oldest reply_at first (crash resume)."""
        query = sa.select(R).where(R.c.state.in_(_UNFINISHED))
        if account_id is not None:
            query = query.where(R.c.account_id == account_id)
        async with self._tx() as session:
            rows = await session.execute(query.order_by(R.c.reply_at, R.c.id))
        return [ReplyRecord.from_row(row._mapping) for row in rows]

    async def pending_reply(self, chat_id: int) -> ReplyRecord | None:
        """The chat's newest job that has not started generating (received/scheduled)."""
        query = (
            sa.select(R)
            .where(R.c.chat_id == chat_id, R.c.state.in_(("received", "scheduled")))
            .order_by(R.c.id.desc())
            .limit(1)
        )
        async with self._tx() as session:
            row = (await session.execute(query)).first()
        return None if row is None else ReplyRecord.from_row(row._mapping)

    async def next_due_at(self) -> datetime | None:
        """When the soonest unfinished, unleased job becomes due (the worker sleeps until then;
        leased jobs are running, and wake the worker themselves when they finish)."""
        due = sa.func.coalesce(R.c.next_attempt_at, R.c.reply_at)
        query = sa.select(sa.func.min(due)).where(
            R.c.state.in_(_UNFINISHED), R.c.lease_until.is_(None)
        )
        async with self._tx() as session:
            return (await session.execute(query)).scalar()

    async def release_leases(self) -> int:
        """Forget every lease (start-up of the single daemon process: no other worker holds
        one, so jobs interrupted by a crash resume at once instead of when leases expire)."""
        statement = (
            sa.update(R)
            .where(R.c.state.in_(_UNFINISHED), R.c.lease_until.is_not(None))
            .values(lease_until=None)
        )
        async with self._tx() as session:
            return (await session.execute(statement)).rowcount or 0

    async def reply_times(
        self, account_id: int, since: datetime, *, chat_id: int | None = None
    ) -> list[datetime]:
        """When replies were sent (or are scheduled) since `since`: input to the rate limits."""
        when = sa.func.coalesce(R.c.finished_at, R.c.reply_at)
        query = sa.select(when).where(
            R.c.account_id == account_id,
            R.c.state.in_(("sent", "scheduled", "generating", "sending")),
            when >= since,
        )
        if chat_id is not None:
            query = query.where(R.c.chat_id == chat_id)
        async with self._tx() as session:
            return list((await session.execute(query)).scalars())
