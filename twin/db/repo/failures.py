"""Failed replies: finding the ones an outage failed, and re-queuing a failed reply.

A failed reply records why in `replies.failure` (twin.domain.models.Failure). Re-queuing puts it
back where it can go on without sending anything twice: to `sending` when its bubbles were
stored (they resume with their stored random_ids, so a bubble Telegram already accepted is
answered RANDOM_ID_DUPLICATE, never sent again), else to `scheduled` (nothing was sent, so it
is generated afresh). Its messages go back to where they were before the failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import Direction, Failure, ReplyRecord, ReplyState
from twin.db.repo._base import RepoBase
from twin.db.tables import Chat, Message, Reply
from twin.errors import Conflict, NotFound

R = Reply.__table__
M = Message.__table__
C = Chat.__table__

# The pipeline's mark on bubbles of an earlier generation (replaced before anything was sent).
STALE_BUBBLE = "regenerated"

_FAILED = ReplyState.FAILED.value
_OUTGOING = Direction.OUTGOING.value
_INCOMING = Direction.INCOMING.value
_CANCELLED = ReplyState.CANCELLED.value

# The reply's own bubbles (its last generation): any means it had entered `sending`.
_CURRENT_BUBBLES = sa.and_(
    M.c.reply_id == sa.bindparam("_reply_id"),
    M.c.direction == _OUTGOING,
    sa.or_(M.c.state_reason.is_(None), M.c.state_reason != STALE_BUBBLE),
)
_HAS_BUBBLES = sa.select(sa.exists().where(_CURRENT_BUBBLES))
# Bubbles the failure cancelled before they were sent go back to `sending`.
_RESUME_BUBBLES = (
    sa.update(M)
    .where(_CURRENT_BUBBLES, M.c.state == _CANCELLED, M.c.tg_message_id.is_(None))
    .values(state=ReplyState.SENDING.value, state_reason=None)
)
# The messages it answers are pending again (deleted ones stay cancelled).
_REOPEN_INCOMING = (
    sa.update(M)
    .where(
        M.c.reply_id == sa.bindparam("_reply_id"),
        M.c.direction == _INCOMING,
        M.c.state != _CANCELLED,
    )
    .values(state=ReplyState.SCHEDULED.value, state_reason=None)
)


class OutageFailure(NamedTuple):
    """A reply failed by an outage; when the newest message it answers was sent (None when it
    answers none), when the owner last wrote in its chat from another device, and the newest
    later reply of its chat that answers or will answer (a newer reply reads the whole
    conversation, so it answered this one's messages too)."""

    reply: ReplyRecord
    newest_message_at: datetime | None
    owner_active_at: datetime | None
    later_reply_id: int | None = None


def _newest_incoming() -> sa.ScalarSelect[datetime]:
    return (
        sa.select(sa.func.max(M.c.date))
        .where(M.c.reply_id == R.c.id, M.c.direction == _INCOMING)
        .scalar_subquery()
    )


# Replies that answer (or are about to): a later one of these supersedes an outage failure.
_ANSWERING = tuple(
    state.value
    for state in (
        ReplyState.RECEIVED,
        ReplyState.SCHEDULED,
        ReplyState.GENERATING,
        ReplyState.SENDING,
        ReplyState.SENT,
    )
)


def _later_reply() -> sa.ScalarSelect[int]:
    later = R.alias("later")
    return (
        sa.select(sa.func.max(later.c.id))
        .where(later.c.chat_id == R.c.chat_id, later.c.id > R.c.id, later.c.state.in_(_ANSWERING))
        .scalar_subquery()
    )


_OUTAGES = (
    sa.select(
        R,
        _newest_incoming().label("newest_message_at"),
        C.c.last_owner_activity_at.label("owner_active_at"),
        _later_reply().label("later_reply_id"),
    )
    .join(C, C.c.id == R.c.chat_id)
    .where(R.c.failure == Failure.OUTAGE.value, R.c.state == _FAILED)
    .order_by(R.c.id)
    .limit(sa.bindparam("_limit"))
)
_OUTAGES_OF_CHAT = _OUTAGES.where(R.c.chat_id == sa.bindparam("_chat_id"))


class FailuresMixin(RepoBase):
    async def outage_failures(
        self, limit: int = 200, *, chat_id: int | None = None
    ) -> list[OutageFailure]:
        """Replies failed by an outage (failure = outage), oldest first, at most `limit`;
        with `chat_id`, of that chat only."""
        return await self._read(lambda c: self._outage_failures(c, limit, chat_id=chat_id))

    def _outage_failures(
        self, c: Connection, limit: int = 200, *, chat_id: int | None = None
    ) -> list[OutageFailure]:
        if chat_id is None:
            rows = c.execute(_OUTAGES, {"_limit": limit})
        else:
            rows = c.execute(_OUTAGES_OF_CHAT, {"_limit": limit, "_chat_id": chat_id})
        return [
            OutageFailure(
                ReplyRecord.from_row(row._mapping),
                row.newest_message_at,
                row.owner_active_at,
                row.later_reply_id,
            )
            for row in rows
        ]

    async def requeue_reply(
        self,
        reply_id: int,
        *,
        failures: Iterable[Failure | str | None] | None = None,
        attempts: int = 0,
    ) -> ReplyRecord:
        """Re-queue a failed reply: back to `sending` if its bubbles were stored (the unsent
        ones resume), else to `scheduled`, due at once with `attempts` counted (0: a fresh
        budget) and its failure and reason cleared. With `failures`, only a reply failed for
        one of those reasons (None: unknown) is re-queued. NotFound for an unknown reply;
        Conflict when it is not failed (or failed for another reason): nothing changes then.
        """
        return await self._run(
            lambda c: self._requeue_reply(c, reply_id, failures=failures, attempts=attempts)
        )

    def _requeue_reply(
        self,
        c: Connection,
        reply_id: int,
        *,
        failures: Iterable[Failure | str | None] | None = None,
        attempts: int = 0,
    ) -> ReplyRecord:
        params = {"_reply_id": reply_id}
        sending = bool(c.execute(_HAS_BUBBLES, params).scalar())
        where = [R.c.id == reply_id, R.c.state == _FAILED]
        if failures is not None:
            wanted = list(failures)
            known = R.c.failure.in_([Failure(kind).value for kind in wanted if kind is not None])
            where.append(sa.or_(known, R.c.failure.is_(None)) if None in wanted else known)
        state = ReplyState.SENDING if sending else ReplyState.SCHEDULED
        statement = (
            sa.update(R)
            .where(*where)
            .values(
                state=state.value,
                reason=None,
                failure=None,
                attempts=attempts,
                next_attempt_at=None,
                lease_until=None,
                leased_by=None,
                finished_at=None,  # unfinished again (the rate limits rely on it)
            )
            .returning(*R.c)
        )
        row = c.execute(statement).first()
        if row is None:
            current = c.execute(sa.select(R.c.state, R.c.failure).where(R.c.id == reply_id)).first()
            if current is None:
                raise NotFound(f"reply {reply_id} does not exist")
            what = current.state if current.state != _FAILED else f"failed ({current.failure})"
            raise Conflict(f"reply {reply_id} is {what}: it cannot be re-queued")
        c.execute(_REOPEN_INCOMING, params)
        if sending:
            c.execute(_RESUME_BUBBLES, params)
        return ReplyRecord.from_row(row._mapping)
