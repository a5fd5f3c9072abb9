"""Reply jobs: durable, leased units of work of the reply pipeline."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
from twin.db.records import ReplyRecord, ReplyState
from twin.db.repo._base import RepoBase, check_fields, conflict_on_integrity
from twin.db.repo.cluster import beat_since
from twin.db.tables import Account, Message, Reply
from twin.db.tables_cluster import ClusterProcess
from twin.domain.models import TERMINAL_STATES
from twin.errors import Conflict, NotFound

R = Reply.__table__
P = ClusterProcess.__table__
M = Message.__table__

_UNFINISHED = tuple(s.value for s in ReplyState if s not in TERMINAL_STATES)
_TERMINAL = tuple(s.value for s in TERMINAL_STATES)
_UPDATABLE = (
    "state",
    "reason",
    "failure",
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


# Statements built once (see messages.py); UPDATEs take their SET columns from the parameters.
def _state_in(states: Iterable[str]) -> Any:
    """`state IN ('a', 'b')` with the constants in the SQL text: compiled once, not expanded
    per execution like a bound list, and the planner sees the values."""
    return R.c.state.in_([sa.literal_column(f"'{ReplyState(s).value}'") for s in states])


_BY_ID = R.c.id == sa.bindparam("_reply_id")
_INSERT = prepared(sa.insert(R).returning(*R.c))
_SELECT = prepared(sa.select(R).where(_BY_ID))
_UPDATE = prepared(sa.update(R).where(_BY_ID).returning(*R.c))
_guarded: dict[tuple[bool, tuple[str, ...]], Any] = {}


def _guarded_statement(update: bool, expect: tuple[str, ...]) -> Any:
    """UPDATE (or SELECT) of one reply only while it is in one of the `expect` states, built
    once per combination with the states in the SQL text (the pipeline uses a handful)."""
    key = (update, expect)
    statement = _guarded.get(key)
    if statement is None:
        base = sa.update(R) if update else sa.select(R)
        where = base.where(_BY_ID, _state_in(expect))
        statement = _guarded[key] = prepared(where.returning(*R.c) if update else where)
    return statement


_LINK = sa.update(M).where(
    M.c.id.in_(sa.bindparam("_ids", expanding=True)), M.c.chat_id == sa.bindparam("_chat_id")
)
_LINK_ONE = prepared(  # the common case: a reply created for one message
    sa.update(M).where(M.c.id == sa.bindparam("_id"), M.c.chat_id == sa.bindparam("_chat_id"))
)
_PENDING = prepared(
    sa.select(R)
    .where(R.c.chat_id == sa.bindparam("_chat_id"), _state_in(("received", "scheduled")))
    .order_by(R.c.id.desc())
    .limit(1)
)
_NEXT_DUE = sa.select(sa.func.min(sa.func.coalesce(R.c.next_attempt_at, R.c.reply_at))).where(
    R.c.state.in_(_UNFINISHED), R.c.lease_until.is_(None)
)
_COUNTED = ("sent", "scheduled", "generating", "sending")  # replies that use up rate limits


def _window(select: Any, *, chat: bool) -> Any:
    """Replies counted by the rate limits with coalesce(finished_at, reply_at) >= since, as
    two index range scans: finished ones by (state, finished_at, account_id), which also
    answers an account's count without reading the table (by (chat_id, state, finished_at) for
    a chat), the unfinished ones by (state, reply_at). A single coalesce() predicate can use
    neither index and reads every reply the account ever sent.

    A reply has `finished_at` exactly when its state is terminal (stamped by create_reply and
    update_reply; cleared by requeue_reply, the only way out of a terminal state), so the
    unfinished scan skips `sent`: else it would read, row by row, every reply sent in the
    window only to find it finished."""
    since = sa.bindparam("_since", type_=R.c.reply_at.type)
    unfinished = [s for s in _COUNTED if s in _UNFINISHED]

    def part(column: Any, states: Iterable[str], *where: Any) -> Any:
        query = select(column).where(
            R.c.account_id == sa.bindparam("_account_id"), _state_in(states), *where
        )
        return query.where(R.c.chat_id == sa.bindparam("_chat_id")) if chat else query

    return (
        part(R.c.finished_at, _COUNTED, R.c.finished_at >= since),
        part(R.c.reply_at, unfinished, R.c.finished_at.is_(None), R.c.reply_at >= since),
    )


def _times_statement(*, chat: bool) -> Any:
    return sa.union_all(*_window(lambda column: sa.select(column.label("at")), chat=chat))


def _count_statement(*, chat: bool) -> Any:
    finished, unfinished = _window(lambda _: sa.select(sa.func.count()), chat=chat)
    return sa.select(finished.scalar_subquery() + unfinished.scalar_subquery())


_TIMES = {chat: _times_statement(chat=chat) for chat in (False, True)}
_COUNT = {chat: prepared(_count_statement(chat=chat)) for chat in (False, True)}
A = Account.__table__
# The channels whose accounts are served by one process at a time (twin.db.cluster).
TELEGRAM_CHANNELS = ("telegram", "telegram_bot")
_claims: dict[tuple[str, bool], Any] = {}  # per dialect, for every account or for `mine`


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
        message_state: ReplyState | str | None = None,
        lease_until: datetime | None = None,
    ) -> ReplyRecord:
        """Create a reply job and link the chat's messages it answers (messages.reply_id);
        with `message_state`, the linked messages move to that state in the same transaction
        (so no worker can finish the job before its messages say it was scheduled). With
        `lease_until` the job is created claimed, as `claim_due_replies` would leave it (one
        attempt counted): for a caller that runs it at once."""
        return await self._run(
            lambda c: self._create_reply(
                c,
                account_id,
                chat_id,
                reply_at=reply_at,
                message_ids=message_ids,
                state=state,
                reason=reason,
                decision=decision,
                flags=flags,
                voice=voice,
                message_state=message_state,
                lease_until=lease_until,
            )
        )

    def _create_reply(
        self,
        c: Connection,
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
        message_state: ReplyState | str | None = None,
        lease_until: datetime | None = None,
    ) -> ReplyRecord:
        values = {
            "account_id": account_id,
            "chat_id": chat_id,
            "state": ReplyState(state).value,
            "reason": reason,
            "decision": dict(decision or {}),
            "flags": dict(flags or {}),
            "reply_at": reply_at,
            "voice": voice,
            "lease_until": lease_until,
            "leased_by": self.lease_owner if lease_until is not None else None,
            "attempts": 0 if lease_until is None else 1,
            # terminal from the start (e.g. recorded as skipped): finished now, as update_reply
            # would stamp it (the rate limits rely on it, see _window)
            "finished_at": self._clock.now() if ReplyState(state).value in _TERMINAL else None,
        }
        ids = list(dict.fromkeys(message_ids))
        row = c.execute(_INSERT, values).one()
        self._link(c, row.id, chat_id, ids, message_state)
        return ReplyRecord.from_row(row._mapping)

    async def attach_messages(
        self,
        reply_id: int,
        message_ids: Iterable[int],
        *,
        message_state: ReplyState | str | None = None,
    ) -> None:
        """Link more messages of the reply's chat to it (debounce: one answer for a burst),
        optionally moving them to `message_state` in the same transaction."""
        await self._run(
            lambda c: self._attach_messages(c, reply_id, message_ids, message_state=message_state)
        )

    def _attach_messages(
        self,
        c: Connection,
        reply_id: int,
        message_ids: Iterable[int],
        *,
        message_state: ReplyState | str | None = None,
    ) -> None:
        ids = list(dict.fromkeys(message_ids))
        chat_id = c.execute(
            sa.select(R.c.chat_id).where(_BY_ID), {"_reply_id": reply_id}
        ).scalar_one_or_none()
        if chat_id is None:
            raise NotFound(f"reply {reply_id} does not exist")
        self._link(c, reply_id, chat_id, ids, message_state)

    @staticmethod
    def _link(
        c: Connection,
        reply_id: int,
        chat_id: int,
        ids: list[int],
        state: ReplyState | str | None = None,
    ) -> None:
        if not ids:
            return
        values: dict[str, Any] = {"reply_id": reply_id}
        if state is not None:
            values["state"] = ReplyState(state).value
        if len(ids) == 1:
            result = c.execute(_LINK_ONE, {**values, "_id": ids[0], "_chat_id": chat_id})
        else:
            result = c.execute(_LINK, {**values, "_ids": ids, "_chat_id": chat_id})
        if result.rowcount != len(ids):
            raise NotFound(f"some of messages {ids} do not exist in chat {chat_id}")

    async def get_reply(self, reply_id: int) -> ReplyRecord:
        return await self._read(lambda c: self._get_reply(c, reply_id))

    def _get_reply(self, c: Connection, reply_id: int) -> ReplyRecord:
        row = c.execute(_SELECT, {"_reply_id": reply_id}).first()
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
        return await self._run(
            lambda c: self._update_reply(c, reply_id, expect_state=expect_state, **fields)
        )

    def _update_reply(
        self,
        c: Connection,
        reply_id: int,
        *,
        expect_state: ReplyState | str | Iterable[ReplyState | str] | None = None,
        **fields: Any,
    ) -> ReplyRecord:
        check_fields(fields, _UPDATABLE, "update_reply")
        if "state" in fields:
            fields["state"] = ReplyState(fields["state"]).value
            if fields["state"] in _TERMINAL:
                fields.setdefault("finished_at", self._clock.now())
                fields.setdefault("lease_until", None)
        if "lease_until" in fields:
            fields["leased_by"] = self.lease_owner if fields["lease_until"] is not None else None
        params: dict[str, Any] = {**fields, "_reply_id": reply_id}
        if expect_state is not None:
            if isinstance(expect_state, str):
                expect_state = [expect_state]
            expect = tuple(sorted({ReplyState(s).value for s in expect_state}))
            statement = _guarded_statement(bool(fields), expect)
        else:
            statement = _UPDATE if fields else _SELECT
        with conflict_on_integrity(f"cannot update reply {reply_id}"):
            row = c.execute(statement, params).first()
        if row is not None:
            return ReplyRecord.from_row(row._mapping)
        current = c.execute(sa.select(R.c.state).where(_BY_ID), {"_reply_id": reply_id}).first()
        if current is None:
            raise NotFound(f"reply {reply_id} does not exist")
        raise Conflict(f"reply {reply_id} is {current.state}, not {expect_state}")

    async def claim_due_replies(
        self,
        now: datetime,
        lease_seconds: float,
        limit: int = 10,
        mine: Collection[int] | None = None,
    ) -> list[ReplyRecord]:
        """Lease up to `limit` due, unfinished jobs until now + lease_seconds (oldest first).

        Due: reply_at <= now, no back-off pending (next_attempt_at unset or <= now) and no live
        lease. Each claim counts an attempt. A job whose worker died becomes claimable again
        when its lease expires. Two concurrent claimers never get the same job: PostgreSQL
        locks candidates with FOR UPDATE SKIP LOCKED; SQLite serialises writers, and the
        claim is one conditional UPDATE. With `mine` (several processes share the database),
        only jobs of those Telegram accounts and bots, and of the other channels, are claimed:
        another Telegram account's jobs are left to the process that serves it.
        """
        return await self._run(
            lambda c: self._claim_due_replies(c, now, lease_seconds, limit, mine)
        )

    def _claim_due_replies(
        self,
        c: Connection,
        now: datetime,
        lease_seconds: float,
        limit: int = 10,
        mine: Collection[int] | None = None,
    ) -> list[ReplyRecord]:
        key = (c.dialect.name, mine is not None)
        statement = _claims.get(key)
        if statement is None:
            statement = _claims[key] = _claim_statement(self._is_postgres(c), mine is not None)
        params = {
            "_now": now,
            "_limit": limit,
            "_lease_until": now + timedelta(seconds=lease_seconds),
            "_leased_by": self.lease_owner,
        }
        if mine is not None:
            params["_mine"] = sorted(mine)
        claimed = [ReplyRecord.from_row(row._mapping) for row in c.execute(statement, params)]
        return sorted(claimed, key=lambda reply: (reply.reply_at, reply.id))

    async def unfinished_replies(self, account_id: int | None = None) -> list[ReplyRecord]:
        """Jobs not yet sent/skipped/failed/cancelled, oldest reply_at first (crash resume)."""
        query = sa.select(R).where(R.c.state.in_(_UNFINISHED))
        if account_id is not None:
            query = query.where(R.c.account_id == account_id)
        query = query.order_by(R.c.reply_at, R.c.id)

        def work(connection: Connection) -> list[ReplyRecord]:
            return [ReplyRecord.from_row(row._mapping) for row in connection.execute(query)]

        return await self._read(work)

    async def pending_reply(self, chat_id: int) -> ReplyRecord | None:
        """The chat's newest job that has not started generating (received/scheduled)."""
        return await self._read(lambda c: self._pending_reply(c, chat_id))

    def _pending_reply(self, c: Connection, chat_id: int) -> ReplyRecord | None:
        row = c.execute(_PENDING, {"_chat_id": chat_id}).first()
        return None if row is None else ReplyRecord.from_row(row._mapping)

    async def next_due_at(self) -> datetime | None:
        """When the soonest unfinished, unleased job becomes due (the worker sleeps until then;
        leased jobs are running, and wake the worker themselves when they finish)."""
        return await self._read(self._next_due_at)

    def _next_due_at(self, c: Connection) -> datetime | None:
        return c.execute(_NEXT_DUE).scalar()

    async def release_leases(
        self, ids: list[int] | None = None, *, account_id: int | None = None
    ) -> int:
        """Forget every lease (start-up of the only daemon process: no other worker holds
        one, so jobs interrupted by a crash resume at once instead of when leases expire), the
        leases of these jobs only, or those of one account's jobs (a process that just took the
        account over: whoever leased them served it before and is gone or has stopped it)."""
        return await self._run(
            lambda connection: self._release_leases(connection, ids, account_id=account_id)
        )

    def _release_leases(
        self, connection: Connection, ids: list[int] | None = None, *, account_id: int | None = None
    ) -> int:
        where = [R.c.state.in_(_UNFINISHED), R.c.lease_until.is_not(None)]
        if account_id is not None:
            where.append(R.c.account_id == account_id)
        if ids is not None:
            if not ids:
                return 0
            where.append(R.c.id.in_(ids))
        statement = sa.update(R).where(*where).values(lease_until=None, leased_by=None)
        return connection.execute(statement).rowcount or 0

    async def release_orphaned_leases(self, seconds: float, *, keep: str) -> int:
        """Void the leases held by processes that have not beaten for `seconds` (by the
        database's clock) or are no longer listed: killed, or stopped with a job unfinished.
        Their jobs are claimable again at once instead of when the lease would expire. The
        leases of process `keep` (the caller) stay. PostgreSQL only (several processes)."""
        alive = sa.select(P.c.id).where(P.c.heartbeat_at >= beat_since(seconds))
        statement = (
            sa.update(R)
            .where(
                R.c.state.in_(_UNFINISHED),
                R.c.lease_until.is_not(None),
                R.c.leased_by.is_not(None),
                R.c.leased_by != keep,
                R.c.leased_by.not_in(alive.scalar_subquery()),
            )
            .values(lease_until=None, leased_by=None)
        )
        return await self._run(lambda c: c.execute(statement).rowcount or 0)

    async def reply_times(
        self, account_id: int, since: datetime, *, chat_id: int | None = None
    ) -> list[datetime]:
        """When replies were sent (or are scheduled) since `since`: input to the rate limits."""
        return await self._read(lambda c: self._reply_times(c, account_id, since, chat_id=chat_id))

    def _reply_times(
        self, c: Connection, account_id: int, since: datetime, *, chat_id: int | None = None
    ) -> list[datetime]:
        return list(
            c.execute(
                _TIMES[chat_id is not None], _window_params(account_id, since, chat_id)
            ).scalars()
        )

    async def count_replies(
        self, account_id: int, since: datetime, *, chat_id: int | None = None
    ) -> int:
        """How many `reply_times()` there are, counted by the database."""
        return await self._read(
            lambda c: self._count_replies(c, account_id, since, chat_id=chat_id)
        )

    def _count_replies(
        self, c: Connection, account_id: int, since: datetime, *, chat_id: int | None = None
    ) -> int:
        statement = _COUNT[chat_id is not None]
        return int(c.execute(statement, _window_params(account_id, since, chat_id)).scalar_one())


def _window_params(account_id: int, since: datetime, chat_id: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"_account_id": account_id, "_since": since}
    if chat_id is not None:
        params["_chat_id"] = chat_id
    return params


def _claim_statement(postgres: bool, mine: bool = False) -> Any:
    now = sa.bindparam("_now", type_=R.c.reply_at.type)
    where = [
        R.c.state.in_(_UNFINISHED),
        R.c.reply_at <= now,
        sa.or_(R.c.next_attempt_at.is_(None), R.c.next_attempt_at <= now),
        sa.or_(R.c.lease_until.is_(None), R.c.lease_until <= now),
    ]
    if mine:
        channels = sa.select(A.c.id).where(A.c.channel.not_in(TELEGRAM_CHANNELS))
        where.append(
            sa.or_(
                R.c.account_id.in_(sa.bindparam("_mine", expanding=True)),
                R.c.account_id.in_(channels),
            )
        )
    due = (
        sa.select(R.c.id).where(*where).order_by(R.c.reply_at, R.c.id).limit(sa.bindparam("_limit"))
    )
    claim = sa.update(R).values(
        lease_until=sa.bindparam("_lease_until", type_=R.c.lease_until.type),
        leased_by=sa.bindparam("_leased_by", type_=R.c.leased_by.type),
        attempts=R.c.attempts + 1,
    )
    if postgres:
        # A CTE is evaluated once, so the locked rows are exactly the updated ones.
        locked = due.with_for_update(skip_locked=True).cte("due")
        return claim.where(R.c.id == locked.c.id).returning(*R.c)
    return claim.where(R.c.id.in_(due.scalar_subquery())).returning(*R.c)
