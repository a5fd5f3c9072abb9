"""Business analytics over every channel (`GET /api/v1/analytics/metrics`), aggregated by the
database: each figure is one grouped query over an indexed range, no rows are fetched.

Within [since, until):
- messages: stored messages by their date; inbound = incoming, outbound = outgoing (the twin's
  bubbles and the owner's own messages); per platform (the account's channel: telegram,
  http_chat, talkme, external) its messages and users (distinct conversations).
- conversations: total = conversations with a message in the range; escalated = those with a
  job escalated (reason "escalated") that finished in the range; successful = those with a job
  sent in the range and none escalated.
- avg_response_time: seconds from the earliest incoming message a sent job answers to the
  job's finish, averaged over the jobs sent in the range (None without any).
- tokens and cost: the sum over the jobs that finished in the range.
Filters: `platform` (an account channel), `user_id` (a conversation: its id on the channel, or
a Telegram peer id), `account_ids` (an API key bound to an account sees only its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.repo._base import RepoBase
from twin.db.tables import Account, Chat, Message, Reply

A = Account.__table__
C = Chat.__table__
M = Message.__table__
R = Reply.__table__


@dataclass(frozen=True, slots=True)
class Metrics:
    conversations: int
    successful: int
    escalated: int
    messages: int
    inbound: int
    outbound: int
    avg_response_time: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    platforms: dict[str, dict[str, int]] = field(default_factory=dict)  # messages, users


def _chats(platform: str | None, user: str | None, account_ids: Sequence[int] | None) -> Any:
    """The conversations the filters keep (a subquery of chat ids)."""
    query = sa.select(C.c.id).select_from(C.join(A, A.c.id == C.c.account_id))
    if platform is not None:
        query = query.where(A.c.channel == platform)
    if account_ids is not None:
        query = query.where(C.c.account_id.in_(list(account_ids)))
    if user is not None:
        matches = [C.c.external_id == user]
        if user.lstrip("-").isdigit() and abs(int(user)) < 2**63:
            matches.append(C.c.peer_id == int(user))
        query = query.where(sa.or_(*matches))
    return query


def _seconds_between(later: Any, earlier: Any, postgres: bool) -> Any:
    if postgres:
        return sa.func.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


class AnalyticsMixin(RepoBase):
    async def analytics(
        self,
        since: datetime,
        until: datetime,
        *,
        platform: str | None = None,
        user: str | None = None,
        account_ids: Sequence[int] | None = None,
    ) -> Metrics:
        chats = _chats(platform, user, account_ids).scalar_subquery()
        finished = R.c.finished_at
        in_range = (finished >= since) & (finished < until) & R.c.chat_id.in_(chats)

        def work(c: Connection) -> Metrics:
            postgres = self._is_postgres(c)
            per_platform = c.execute(
                sa.select(
                    A.c.channel,
                    sa.func.count().label("messages"),
                    sa.func.count(sa.distinct(M.c.chat_id)).label("users"),
                    sa.func.count().filter(M.c.direction == "incoming").label("inbound"),
                )
                .select_from(M.join(A, A.c.id == M.c.account_id))
                .where(M.c.date >= since, M.c.date < until, M.c.chat_id.in_(chats))
                .group_by(A.c.channel)
            ).all()
            conversations = c.execute(
                sa.select(sa.func.count(sa.distinct(M.c.chat_id))).where(
                    M.c.date >= since, M.c.date < until, M.c.chat_id.in_(chats)
                )
            ).scalar_one()
            escalated_chats = sa.select(R.c.chat_id).where(in_range, R.c.reason == "escalated")
            escalated = c.execute(
                sa.select(sa.func.count(sa.distinct(R.c.chat_id))).where(
                    in_range, R.c.reason == "escalated"
                )
            ).scalar_one()
            successful = c.execute(
                sa.select(sa.func.count(sa.distinct(R.c.chat_id))).where(
                    in_range, R.c.state == "sent", R.c.chat_id.not_in(escalated_chats)
                )
            ).scalar_one()
            usage = c.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(R.c.prompt_tokens), 0),
                    sa.func.coalesce(sa.func.sum(R.c.completion_tokens), 0),
                    sa.func.coalesce(sa.func.sum(R.c.cost_usd), 0),
                ).where(in_range)
            ).one()
            first = (
                sa.select(R.c.finished_at.label("finished"), sa.func.min(M.c.date).label("first"))
                .join(M, (M.c.reply_id == R.c.id) & (M.c.direction == "incoming"))
                .where(in_range, R.c.state == "sent", R.c.finished_at.is_not(None))
                .group_by(R.c.id, R.c.finished_at)
                .subquery()
            )
            average = c.execute(
                sa.select(sa.func.avg(_seconds_between(first.c.finished, first.c.first, postgres)))
            ).scalar_one()
            messages = sum(row.messages for row in per_platform)
            inbound = sum(row.inbound for row in per_platform)
            return Metrics(
                conversations=int(conversations),
                successful=int(successful),
                escalated=int(escalated),
                messages=int(messages),
                inbound=int(inbound),
                outbound=int(messages - inbound),
                avg_response_time=None if average is None else round(max(0.0, float(average)), 3),
                prompt_tokens=int(usage[0]),
                completion_tokens=int(usage[1]),
                cost_usd=round(float(usage[2]), 8),
                platforms={
                    row.channel: {"messages": int(row.messages), "users": int(row.users)}
                    for row in per_platform
                },
            )

        return await self._read(work)

    async def count_incoming(self, account_id: int, *, since: datetime) -> int:
        """Incoming messages of an account since `since` (a bot's messages today)."""
        query = sa.select(sa.func.count()).where(
            M.c.account_id == account_id, M.c.direction == "incoming", M.c.date >= since
        )
        return await self._read(lambda c: int(c.execute(query).scalar_one()))
