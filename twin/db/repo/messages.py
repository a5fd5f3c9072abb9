"""Messages: idempotent intake, the twin's outgoing bubbles and reconciliation (a chat's
history and the brain's conversation are read in twin.db.repo.history)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
from twin.db.records import Direction, MessageKind, MessageRecord, ReplyState
from twin.db.repo._base import RepoBase, check_fields, chunks, conflict_on_integrity
from twin.db.tables import Message, Reply
from twin.errors import NotFound

M = Message.__table__
R = Reply.__table__

# Statements built once: building a statement costs more than running it on SQLite. UPDATEs take
# their SET columns from the parameters they are executed with.
_BY_ID = sa.bindparam("_message_id")
_UPDATE = prepared(sa.update(M).where(M.c.id == _BY_ID).returning(*M.c))
_INSERT = prepared(sa.insert(M).returning(*M.c))
_SELECT_BY_REPLY = (
    sa.select(M).where(M.c.reply_id == sa.bindparam("_reply_id")).order_by(M.c.date, M.c.id)
)
_FINISH_INCOMING = prepared(
    sa.update(M).where(
        M.c.reply_id == sa.bindparam("_reply_id"),
        M.c.direction == Direction.INCOMING.value,
        M.c.state != ReplyState.CANCELLED.value,
    )
)
_CANCEL_UNSENT = sa.update(M).where(
    M.c.reply_id == sa.bindparam("_reply_id"),
    M.c.direction == Direction.OUTGOING.value,
    M.c.state == ReplyState.SENDING.value,
)
_SELECT_BY_TG = prepared(
    sa.select(M).where(
        M.c.account_id == sa.bindparam("_account_id"),
        M.c.chat_id == sa.bindparam("_chat_id"),
        M.c.tg_message_id == sa.bindparam("_tg_message_id"),
    )
)
_UNPLANNED = sa.and_(
    M.c.direction == Direction.INCOMING.value,
    M.c.state == ReplyState.RECEIVED.value,
    M.c.reply_id.is_(None),
)
_insert_incoming: dict[str, Any] = {}  # per dialect: INSERT … ON CONFLICT DO NOTHING RETURNING

_UPDATABLE = (
    "text",
    "transcript",
    "duration",
    "kind",
    "state",
    "state_reason",
    "reply_id",
    "bubble_index",
    "random_id",
    "tg_message_id",
    "date",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)


class MessagesMixin(RepoBase):
    async def add_incoming(
        self,
        account_id: int,
        chat_id: int,
        tg_message_id: int,
        *,
        date: datetime,
        text: str | None = None,
        kind: MessageKind | str = MessageKind.TEXT,
        sender_id: int | None = None,
        reply_to_tg_id: int | None = None,
        duration: float | None = None,
        transcript: str | None = None,
        direction: Direction | str = Direction.INCOMING,
        state: ReplyState | str | None = None,
    ) -> tuple[MessageRecord, bool]:
        """Record a message seen on Telegram, once per (account, chat, Telegram id).

        Also used for outgoing messages the owner wrote elsewhere (`direction="outgoing"`,
        state defaults to "sent"). Returns the stored message and whether this call created it;
        a repeat or a concurrent duplicate returns the existing row untouched.
        """
        return await self._run(
            lambda c: self._add_incoming(
                c,
                account_id,
                chat_id,
                tg_message_id,
                date=date,
                text=text,
                kind=kind,
                sender_id=sender_id,
                reply_to_tg_id=reply_to_tg_id,
                duration=duration,
                transcript=transcript,
                direction=direction,
                state=state,
            )
        )

    def _add_incoming(
        self,
        c: Connection,
        account_id: int,
        chat_id: int,
        tg_message_id: int,
        *,
        date: datetime,
        text: str | None = None,
        kind: MessageKind | str = MessageKind.TEXT,
        sender_id: int | None = None,
        reply_to_tg_id: int | None = None,
        duration: float | None = None,
        transcript: str | None = None,
        direction: Direction | str = Direction.INCOMING,
        state: ReplyState | str | None = None,
    ) -> tuple[MessageRecord, bool]:
        direction = Direction(direction)
        if state is None:
            state = ReplyState.RECEIVED if direction is Direction.INCOMING else ReplyState.SENT
        values = {
            "account_id": account_id,
            "chat_id": chat_id,
            "tg_message_id": tg_message_id,
            "direction": direction.value,
            "kind": MessageKind(kind).value,
            "text": text,
            "transcript": transcript,
            "duration": duration,
            "reply_to_tg_id": reply_to_tg_id,
            "sender_id": sender_id,
            "date": date,
            "state": ReplyState(state).value,
        }
        insert = _insert_incoming.get(c.dialect.name)
        if insert is None:
            insert = _insert_incoming[c.dialect.name] = prepared(_insert_if_new(c))
        with conflict_on_integrity(f"cannot record message {tg_message_id}"):
            row = c.execute(insert, values).first()
        if row is not None:
            return MessageRecord.from_row(row._mapping), True
        row = c.execute(
            _SELECT_BY_TG,
            {"_account_id": account_id, "_chat_id": chat_id, "_tg_message_id": tg_message_id},
        ).one()
        return MessageRecord.from_row(row._mapping), False

    async def add_outgoing(
        self,
        account_id: int,
        chat_id: int,
        *,
        text: str | None,
        kind: MessageKind | str = MessageKind.TEXT,
        reply_id: int | None = None,
        bubble_index: int | None = None,
        random_id: int | None = None,
        state: ReplyState | str = ReplyState.SENDING,
        date: datetime | None = None,
        duration: float | None = None,
    ) -> MessageRecord:
        """Record a bubble the twin is about to send (no Telegram id yet).

        Persist `random_id` here or with `set_random_id` BEFORE sending: Telegram rejects a
        repeated random_id, which makes a retried send idempotent.
        """
        return await self._run(
            lambda c: self._add_outgoing(
                c,
                account_id,
                chat_id,
                text=text,
                kind=kind,
                reply_id=reply_id,
                bubble_index=bubble_index,
                random_id=random_id,
                state=state,
                date=date,
                duration=duration,
            )
        )

    def _add_outgoing(
        self,
        c: Connection,
        account_id: int,
        chat_id: int,
        *,
        text: str | None,
        kind: MessageKind | str = MessageKind.TEXT,
        reply_id: int | None = None,
        bubble_index: int | None = None,
        random_id: int | None = None,
        state: ReplyState | str = ReplyState.SENDING,
        date: datetime | None = None,
        duration: float | None = None,
    ) -> MessageRecord:
        values = {
            "account_id": account_id,
            "chat_id": chat_id,
            "direction": Direction.OUTGOING.value,
            "kind": MessageKind(kind).value,
            "text": text,
            "duration": duration,
            "reply_id": reply_id,
            "bubble_index": bubble_index,
            "random_id": random_id,
            "state": ReplyState(state).value,
            "date": date or self._clock.now(),
        }
        with conflict_on_integrity(f"random_id {random_id} is already used"):
            row = c.execute(_INSERT, values).one()
        return MessageRecord.from_row(row._mapping)

    async def get_message(self, message_id: int) -> MessageRecord:
        return await self._one_message(M.c.id == message_id, f"message {message_id}")

    async def get_message_by_tg(
        self, account_id: int, chat_id: int, tg_message_id: int
    ) -> MessageRecord:
        return await self._one_message(
            (M.c.account_id == account_id)
            & (M.c.chat_id == chat_id)
            & (M.c.tg_message_id == tg_message_id),
            f"message {tg_message_id} of chat {chat_id}",
        )

    async def get_message_by_random_id(self, account_id: int, random_id: int) -> MessageRecord:
        return await self._one_message(
            (M.c.account_id == account_id) & (M.c.random_id == random_id),
            f"message with random_id {random_id}",
        )

    async def incoming_by_tg_ids(
        self,
        account_id: int,
        tg_message_ids: list[int],
        *,
        chat_id: int | None = None,
        direction: str = "incoming",
    ) -> list[MessageRecord]:
        """Incoming (or `direction`) messages with these Telegram ids. Without `chat_id`:
        across the account's private chats and basic groups, whose message ids are per account
        (that is all a private-chat deletion update says)."""
        where = (M.c.account_id == account_id) & (M.c.direction == direction)
        where &= M.c.tg_message_id.in_(list(tg_message_ids))
        if chat_id is not None:
            where &= M.c.chat_id == chat_id

        def work(connection: Connection) -> list[MessageRecord]:
            rows = connection.execute(sa.select(M).where(where))
            return [MessageRecord.from_row(row._mapping) for row in rows]

        return await self._read(work) if tg_message_ids else []

    async def _one_message(self, where: sa.ColumnElement[bool], what: str) -> MessageRecord:
        def work(connection: Connection) -> MessageRecord:
            row = connection.execute(sa.select(M).where(where)).first()
            if row is None:
                raise NotFound(f"{what} does not exist")
            return MessageRecord.from_row(row._mapping)

        return await self._read(work)

    async def update_message(self, message_id: int, **fields: Any) -> MessageRecord:
        """Set any of: text, transcript, duration, kind, state, state_reason, reply_id,
        bubble_index, random_id, tg_message_id, date, prompt_tokens, completion_tokens,
        cost_usd. Conflict if a unique key (Telegram id, random_id) is already taken."""
        fields = _message_fields(fields)
        if not fields:
            return await self.get_message(message_id)
        return await self._run(lambda c: self._update_message(c, message_id, **fields))

    def _update_message(self, c: Connection, message_id: int, **fields: Any) -> MessageRecord:
        fields = _message_fields(fields)
        if not fields:
            row = c.execute(sa.select(M).where(M.c.id == message_id)).first()
        else:
            with conflict_on_integrity(f"cannot update message {message_id}"):
                row = c.execute(_UPDATE, {**fields, "_message_id": message_id}).first()
        if row is None:
            raise NotFound(f"message {message_id} does not exist")
        return MessageRecord.from_row(row._mapping)

    async def set_message_state(
        self, message_id: int, state: ReplyState | str, reason: str | None = None
    ) -> MessageRecord:
        return await self.update_message(message_id, state=state, state_reason=reason)

    async def set_random_id(self, message_id: int, random_id: int) -> MessageRecord:
        return await self.update_message(message_id, random_id=random_id)

    async def mark_sent(
        self, message_id: int, tg_message_id: int, *, date: datetime | None = None
    ) -> MessageRecord:
        """The bubble went out as Telegram message `tg_message_id`."""
        return await self.update_message(message_id, **_sent_fields(tg_message_id, date))

    def _mark_sent(
        self, c: Connection, message_id: int, tg_message_id: int, *, date: datetime | None = None
    ) -> MessageRecord:
        return self._update_message(c, message_id, **_sent_fields(tg_message_id, date))

    async def finish_reply_messages(
        self, reply_id: int, state: ReplyState | str, reason: str | None = None
    ) -> None:
        """A job's outcome onto its messages: its incoming messages (but cancelled ones) take
        `state` and `reason`; unless the job was sent, its bubbles still `sending` are
        cancelled with `reason`."""
        await self._run(lambda c: self._finish_reply_messages(c, reply_id, state, reason))

    def _finish_reply_messages(
        self, c: Connection, reply_id: int, state: ReplyState | str, reason: str | None = None
    ) -> None:
        state = ReplyState(state)
        c.execute(
            _FINISH_INCOMING, {"state": state.value, "state_reason": reason, "_reply_id": reply_id}
        )
        if state is not ReplyState.SENT:
            c.execute(
                _CANCEL_UNSENT,
                {
                    "state": ReplyState.CANCELLED.value,
                    "state_reason": reason,
                    "_reply_id": reply_id,
                },
            )

    async def unrecorded_ids(
        self, account_id: int, chat_id: int, candidate_ids: Iterable[int]
    ) -> list[int]:
        """Which of these Telegram message ids are not stored yet (input order, no repeats)."""
        wanted = list(dict.fromkeys(candidate_ids))

        def work(connection: Connection) -> set[int]:
            known: set[int] = set()
            for chunk in chunks(wanted):
                rows = connection.execute(
                    sa.select(M.c.tg_message_id).where(
                        M.c.account_id == account_id,
                        M.c.chat_id == chat_id,
                        M.c.tg_message_id.in_(chunk),
                    )
                )
                known.update(rows.scalars())
            return known

        known = await self._read(work)
        return [message_id for message_id in wanted if message_id not in known]

    async def unplanned_incoming(self, since: datetime, limit: int = 1000) -> list[MessageRecord]:
        """Incoming messages stored without a decision (still `received`, no reply job) dated
        `since` or later, oldest first: an interrupted intake or an older version left them."""
        query = (
            sa.select(M)
            .where(_UNPLANNED, M.c.date >= since)
            .order_by(M.c.date, M.c.id)
            .limit(limit)
        )

        def work(connection: Connection) -> list[MessageRecord]:
            return [MessageRecord.from_row(row._mapping) for row in connection.execute(query)]

        return await self._read(work)

    def _unplanned_message(self, c: Connection, message_id: int) -> MessageRecord | None:
        """The message if it is still without a decision (inside the transaction that plans
        it, so two planners cannot both take it)."""
        row = c.execute(sa.select(M).where(M.c.id == message_id, _UNPLANNED)).first()
        return None if row is None else MessageRecord.from_row(row._mapping)

    async def last_owner_message_id(self, account_id: int, chat_id: int) -> int | None:
        """The Telegram id of the newest message the owner wrote in the chat themselves (from
        another device or through the API: outgoing, not a bubble of a reply job)."""
        query = sa.select(sa.func.max(M.c.tg_message_id)).where(
            M.c.account_id == account_id,
            M.c.chat_id == chat_id,
            M.c.direction == Direction.OUTGOING.value,
            M.c.reply_id.is_(None),
        )
        return await self._read(lambda c: c.execute(query).scalar())

    async def message_before(
        self, account_id: int, chat_id: int, tg_message_id: int
    ) -> MessageRecord | None:
        """The chat's stored message just before this Telegram id (ids grow with time in a
        chat), or None; through the (account, chat, Telegram id) index."""
        query = (
            sa.select(M)
            .where(
                M.c.account_id == account_id,
                M.c.chat_id == chat_id,
                M.c.tg_message_id < tg_message_id,
            )
            .order_by(M.c.tg_message_id.desc())
            .limit(1)
        )

        def work(c: Connection) -> MessageRecord | None:
            row = c.execute(query).first()
            return None if row is None else MessageRecord.from_row(row._mapping)

        return await self._read(work)

    async def reply_messages(self, reply_id: int) -> list[MessageRecord]:
        """Messages linked to a reply job (incoming triggers and outgoing bubbles), oldest
        first."""
        return await self._read(lambda c: self._reply_messages(c, reply_id))

    def _reply_messages(self, c: Connection, reply_id: int) -> list[MessageRecord]:
        rows = c.execute(_SELECT_BY_REPLY, {"_reply_id": reply_id})
        return [MessageRecord.from_row(row._mapping) for row in rows]


def _insert_if_new(c: Connection) -> Any:
    """INSERT … RETURNING that skips a message already recorded. On SQLite as `INSERT OR
    IGNORE`: SQLAlchemy cannot cache statements with ON CONFLICT clauses and compiles them
    anew on every call (~0.6 ms, more than everything else intake does). OR IGNORE also skips
    NOT NULL and CHECK violations, which the values built by `_add_incoming` cannot have."""
    if c.dialect.name == "sqlite":
        return sa.insert(M).prefix_with("OR IGNORE").returning(*M.c)
    return (
        RepoBase._insert(c, M)
        .on_conflict_do_nothing(index_elements=["account_id", "chat_id", "tg_message_id"])
        .returning(*M.c)
    )


def _message_fields(fields: dict[str, Any]) -> dict[str, Any]:
    check_fields(fields, _UPDATABLE, "update_message")
    if "state" in fields:
        fields["state"] = ReplyState(fields["state"]).value
    if "kind" in fields:
        fields["kind"] = MessageKind(fields["kind"]).value
    return fields


def _sent_fields(tg_message_id: int, date: datetime | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"tg_message_id": tg_message_id, "state": ReplyState.SENT.value}
    if date is not None:
        fields["date"] = date
    return fields
