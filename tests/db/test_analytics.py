"""Business analytics (twin/db/repo/analytics.py, GET /api/v1/analytics/metrics) on SQLite and
PostgreSQL: every figure equals what this test counts from the rows it stored (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from twin.db.repo import Repository
from twin.db.tables import Reply

DAY = datetime(2026, 11, 20, tzinfo=UTC)
SINCE, UNTIL = DAY - timedelta(days=1), DAY + timedelta(days=1)


async def _finish(
    repo: Repository,
    reply_id: int,
    state: str,
    at: datetime,
    reason: str | None = None,
    prompt: int = 0,
    completion: int = 0,
    cost: float = 0.0,
) -> None:
    statement = (
        sa.update(Reply.__table__)
        .where(Reply.__table__.c.id == reply_id)
        .values(
            state=state,
            reason=reason,
            finished_at=at,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
        )
    )
    await repo._run(lambda c: c.execute(statement))


async def populate(repo: Repository) -> dict[str, int]:
    telegram = await repo.get_or_create_account("default")
    chat = await repo.channel_instance("chat", "http_chat")
    t1, _ = await repo.upsert_chat(telegram.id, 101, kind="private", title="Ann")
    t2, _ = await repo.upsert_chat(telegram.id, 102, kind="private", title="Bob")
    h1, _ = await repo.upsert_chat(chat.id, 555, kind="private", external_id="h-1")
    at = DAY.replace(hour=10)
    # T1: answered in 30 s
    m1, _ = await repo.add_incoming(telegram.id, t1.id, 1, date=at, text="hi")
    r1 = await repo.create_reply(telegram.id, t1.id, reply_at=at, message_ids=[m1.id])
    await repo.add_outgoing(
        telegram.id,
        t1.id,
        text="hello",
        reply_id=r1.id,
        bubble_index=0,
        state="sent",
        date=at + timedelta(seconds=30),
    )
    await _finish(repo, r1.id, "sent", at + timedelta(seconds=30), None, 100, 20, 0.001)
    # T2: escalated
    m2, _ = await repo.add_incoming(telegram.id, t2.id, 2, date=at.replace(hour=11), text="refund?")
    r2 = await repo.create_reply(telegram.id, t2.id, reply_at=at, message_ids=[m2.id])
    await _finish(repo, r2.id, "skipped", at.replace(hour=11, second=5), "escalated")
    # H1: two messages, one answer 70 s after the first
    noon = at.replace(hour=12)
    m3, _ = await repo.add_incoming(chat.id, h1.id, 3, date=noon, text="price?")
    m4, _ = await repo.add_incoming(chat.id, h1.id, 4, date=noon + timedelta(minutes=1), text="?")
    r3 = await repo.create_reply(chat.id, h1.id, reply_at=noon, message_ids=[m3.id, m4.id])
    await repo.add_outgoing(
        chat.id,
        h1.id,
        text="10 EUR",
        reply_id=r3.id,
        bubble_index=0,
        state="sent",
        date=noon + timedelta(seconds=70),
    )
    await _finish(repo, r3.id, "sent", noon + timedelta(seconds=70), None, 50, 10, 0.0005)
    # outside the range: not counted
    await repo.add_incoming(telegram.id, t1.id, 5, date=DAY - timedelta(days=40), text="old")
    return {"telegram": telegram.id, "chat": chat.id}


async def test_every_figure_is_what_was_stored(repo: Repository) -> None:
    await populate(repo)
    metrics = await repo.analytics(SINCE, UNTIL)
    assert (metrics.conversations, metrics.successful, metrics.escalated) == (3, 2, 1)
    assert (metrics.messages, metrics.inbound, metrics.outbound) == (6, 4, 2)
    assert metrics.avg_response_time == 50.0  # (30 s + 70 s) / 2
    assert (metrics.prompt_tokens, metrics.completion_tokens) == (150, 30)
    assert metrics.cost_usd == 0.0015
    assert metrics.platforms == {
        "telegram": {"messages": 3, "users": 2},
        "http_chat": {"messages": 3, "users": 1},
    }


async def test_filters_keep_a_platform_a_conversation_or_an_account(repo: Repository) -> None:
    ids = await populate(repo)
    chat = await repo.analytics(SINCE, UNTIL, platform="http_chat")
    assert (chat.conversations, chat.messages, chat.avg_response_time) == (1, 3, 70.0)
    assert (await repo.analytics(SINCE, UNTIL, user="h-1")).messages == 3
    ann = await repo.analytics(SINCE, UNTIL, user="101")  # a Telegram peer id
    assert (ann.conversations, ann.successful, ann.messages) == (1, 1, 2)
    mine = await repo.analytics(SINCE, UNTIL, account_ids=[ids["telegram"]])
    assert (mine.conversations, mine.escalated, mine.messages) == (2, 1, 3)
    empty = await repo.analytics(DAY + timedelta(days=5), DAY + timedelta(days=6))
    assert (empty.conversations, empty.messages, empty.avg_response_time) == (0, 0, None)
