"""Claim races between two daemons' workers on one database: each claimer has its own engine
(its own connections), many claims run at once, and every due reply is claimed by exactly one
of them — FOR UPDATE SKIP LOCKED on PostgreSQL, one conditional UPDATE under SQLite's write
lock. Checked on what the claimers got and on what storage counted (`attempts`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from tests.db.conftest import make_settings
from twin.db.engine import Database, database
from twin.db.records import ReplyState

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
REPLIES = 120
CLAIMERS = 12  # per engine
LIMIT = 7  # per claim: 2 × 12 × 7 = 168 places for 120 due replies
LEASE = 300.0


async def test_two_engines_claiming_at_once_never_share_a_reply(
    db: Database, migrated_url: str, tmp_path
) -> None:
    repo = db.repo
    account = await repo.get_or_create_account("default")
    chats = [(await repo.upsert_chat(account.id, 1000 + i))[0] for i in range(6)]
    due = set()
    for i in range(REPLIES):
        chat = chats[i % len(chats)]
        reply = await repo.create_reply(
            account.id, chat.id, reply_at=NOW - timedelta(seconds=REPLIES - i)
        )
        due.add(reply.id)
    later = await repo.create_reply(account.id, chats[0].id, reply_at=NOW + timedelta(minutes=5))
    done = await repo.create_reply(account.id, chats[1].id, reply_at=NOW - timedelta(hours=1))
    await repo.update_reply(done.id, state=ReplyState.SENT)

    async with database(make_settings(migrated_url, tmp_path)) as other:
        claimers = [db.repo, other.repo] * CLAIMERS
        batches = await asyncio.gather(
            *(claimer.claim_due_replies(NOW, LEASE, LIMIT) for claimer in claimers)
        )
        rest = await other.repo.claim_due_replies(NOW, LEASE, limit=1000)

    claims = Counter(reply.id for batch in [*batches, rest] for reply in batch)
    doubled = {reply_id: n for reply_id, n in claims.items() if n > 1}
    assert doubled == {}
    assert set(claims) == due  # every due one, and nothing that was not due
    assert all(len(batch) <= LIMIT for batch in batches)
    by_engine = [
        sum(len(b) for b in batches[0::2]),
        sum(len(b) for b in batches[1::2]),
    ]
    assert sum(by_engine) + len(rest) == REPLIES
    # Storage agrees: each due reply was leased once, counted as one attempt.
    for reply_id in due:
        stored = await repo.get_reply(reply_id)
        assert (stored.attempts, stored.lease_until) == (1, NOW + timedelta(seconds=LEASE))
    assert (await repo.get_reply(later.id)).attempts == 0
    assert (await repo.get_reply(done.id)).attempts == 0
    # Leased: neither engine gets any of them again until the leases run out.
    assert await repo.claim_due_replies(NOW + timedelta(seconds=LEASE - 1), LEASE, 1000) == []
