"""The owner's drafts (copilot mode): written with the job that drafted them, decided once —
sent, skipped, expired, superseded by a newer draft for the chat, or cancelled by the owner
writing there. Every decision is a conditional update of a pending draft, so two decisions
never both win."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.base import utcnow
from twin.db.records_drafts import DraftRecord
from twin.db.repo._base import RepoBase
from twin.db.tables import Account, Chat
from twin.db.tables_drafts import Draft
from twin.errors import Conflict, NotFound

D = Draft.__table__
A = Account.__table__
C = Chat.__table__

_LISTED = sa.select(D, A.c.name.label("account"), C.c.peer_id, C.c.title).select_from(
    D.join(A, A.c.id == D.c.account_id).join(C, C.c.id == D.c.chat_id)
)


def _record(row: sa.Row) -> DraftRecord:
    return DraftRecord.from_row(row._mapping)


class DraftsMixin(RepoBase):
    def _create_draft(
        self,
        c: Connection,
        account_id: int,
        chat_id: int,
        reply_id: int,
        text: str,
        *,
        at: datetime,
        expires_at: datetime | None,
        notice_random_id: int | None = None,
    ) -> tuple[DraftRecord, int]:
        """The new pending draft of the chat, and how many older pending ones it supersedes
        (a newer message from the contact was drafted again: only the newest is the owner's
        to decide)."""
        superseded = c.execute(
            sa.update(D)
            .where(D.c.chat_id == chat_id, D.c.state == "pending")
            .values(state="superseded", reason="regenerated", decided_at=at)
        ).rowcount
        draft_id = c.execute(
            sa.insert(D)
            .values(
                account_id=account_id,
                chat_id=chat_id,
                reply_id=reply_id,
                state="pending",
                text=text,
                created_at=at,
                expires_at=expires_at,
                notice_random_id=notice_random_id,
            )
            .returning(D.c.id)
        ).scalar_one()
        return self._get_draft(c, draft_id), superseded

    async def get_draft(self, draft_id: int) -> DraftRecord:
        return await self._read(lambda c: self._get_draft(c, draft_id))

    def _get_draft(self, c: Connection, draft_id: int) -> DraftRecord:
        row = c.execute(_LISTED.where(D.c.id == draft_id)).first()
        if row is None:
            raise NotFound(f"no draft {draft_id}")
        return _record(row)

    async def drafts(
        self, *, account_id: int | None = None, state: str | None = "pending", limit: int = 100
    ) -> list[DraftRecord]:
        """Drafts, newest first (`state` None: every state)."""
        query = _LISTED.order_by(D.c.created_at.desc(), D.c.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(D.c.account_id == account_id)
        if state is not None:
            query = query.where(D.c.state == state)
        return await self._read(lambda c: [_record(row) for row in c.execute(query)])

    def _decide_draft(
        self,
        c: Connection,
        draft_id: int,
        state: str,
        *,
        at: datetime,
        reason: str | None = None,
        final_text: str | None = None,
        sent_reply_id: int | None = None,
    ) -> DraftRecord:
        """Move a pending draft to `state`; Conflict when it was decided already."""
        decided = c.execute(
            sa.update(D)
            .where(D.c.id == draft_id, D.c.state == "pending")
            .values(
                state=state,
                reason=reason,
                final_text=final_text,
                sent_reply_id=sent_reply_id,
                decided_at=at,
            )
        ).rowcount
        current = self._get_draft(c, draft_id)  # NotFound for an unknown id
        if not decided:
            raise Conflict(f"draft {draft_id} is {current.state} already")
        return current

    def _cancel_chat_drafts(
        self, c: Connection, chat_id: int, reason: str, at: datetime | None = None
    ) -> list[int]:
        """Cancel the chat's pending drafts (the owner wrote there themselves, or paused it):
        their ids."""
        at = at or utcnow()
        cancelled = c.execute(
            sa.update(D)
            .where(D.c.chat_id == chat_id, D.c.state == "pending")
            .values(state="cancelled", reason=reason, decided_at=at)
            .returning(D.c.id)
        )
        return sorted(row[0] for row in cancelled)

    async def due_drafts(self, now: datetime, limit: int = 100) -> list[DraftRecord]:
        """Pending drafts whose time is up, oldest first."""
        query = (
            _LISTED.where(D.c.state == "pending", D.c.expires_at <= now)
            .order_by(D.c.expires_at, D.c.id)
            .limit(limit)
        )
        return await self._read(lambda c: [_record(row) for row in c.execute(query)])

    async def next_draft_expiry(self) -> datetime | None:
        query = sa.select(sa.func.min(D.c.expires_at)).where(D.c.state == "pending")

        def work(c: Connection) -> datetime | None:
            soonest = c.execute(query).scalar()
            if isinstance(soonest, str):  # SQLite's min() of stored text
                soonest = datetime.fromisoformat(soonest + "+00:00")
            return soonest

        return await self._read(work)

    async def draft_by_notice(self, account_id: int, message_id: int) -> DraftRecord | None:
        """The draft whose note in the owner's Saved Messages is this message."""
        query = _LISTED.where(
            D.c.account_id == account_id,
            D.c.notice_message_id == message_id,
            D.c.notice_bot_id.is_(None),  # a bot's note has the bot chat's own ids
        )
        return await self._read(lambda c: next((_record(row) for row in c.execute(query)), None))

    async def draft_by_bot_notice(self, bot_id: int, message_id: int) -> DraftRecord | None:
        """The draft whose note from this bot (its account id) is this message."""
        query = _LISTED.where(D.c.notice_bot_id == bot_id, D.c.notice_message_id == message_id)
        return await self._read(lambda c: next((_record(row) for row in c.execute(query)), None))

    async def route_draft_notice(
        self, draft_id: int, route: str, bot_id: int | None, *, again: bool = False
    ) -> DraftRecord:
        """Decide where the draft's note goes (kept when decided already, unless `again`:
        the bot refused it, it goes to Saved Messages); the draft as it is then."""

        def work(c: Connection) -> DraftRecord:
            update = sa.update(D).where(D.c.id == draft_id, D.c.notice_message_id.is_(None))
            if not again:
                update = update.where(D.c.notice_route.is_(None))
            c.execute(update.values(notice_route=route, notice_bot_id=bot_id))
            row = c.execute(_LISTED.where(D.c.id == draft_id)).first()
            if row is None:
                raise NotFound(f"no draft {draft_id}")
            return _record(row)

        return await self._run(work)

    async def set_draft_notice(self, draft_id: int, message_id: int) -> None:
        await self._run(
            lambda c: c.execute(
                sa.update(D).where(D.c.id == draft_id).values(notice_message_id=message_id)
            )
        )

    async def unnoticed_drafts(
        self, limit: int = 100, accounts: Collection[int] | None = None
    ) -> list[DraftRecord]:
        """Pending drafts whose note may not have reached the owner (a crash, an outage);
        with `accounts`, only those of these accounts, going from these bots, or not routed
        yet (what one process of a cluster may send: the others' stuck notes never crowd its
        own out)."""
        query = _LISTED.where(
            D.c.state == "pending",
            D.c.notice_random_id.is_not(None),
            D.c.notice_message_id.is_(None),
        )
        if accounts is not None:
            served = sorted(accounts)
            query = query.where(
                sa.or_(
                    D.c.account_id.in_(served),
                    D.c.notice_bot_id.in_(served),
                    D.c.notice_route.is_(None),  # its way not decided yet: perhaps a bot here
                )
            )
        query = query.order_by(D.c.id).limit(limit)
        return await self._read(lambda c: [_record(row) for row in c.execute(query)])
