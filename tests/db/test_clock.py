"""One clock (issue 13.4): the times the repository stamps come from the injected Clock, as the
services' do — so a test that moves a ManualClock sees `finished_at`, `updated_at` and a
bubble's default date move with it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.db.conftest import make_settings
from twin.clock import ManualClock
from twin.db.engine import database

LONG_AGO = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)


async def test_repository_stamps_follow_the_injected_clock(migrated_url: str, tmp_path) -> None:
    clock = ManualClock(LONG_AGO)
    async with database(make_settings(migrated_url, tmp_path), clock=clock) as db:
        repo = db.repo
        account = await repo.get_or_create_account("default")
        chat, _ = await repo.upsert_chat(account.id, 1001, kind="private", title="Alice")
        message, _ = await repo.add_incoming(account.id, chat.id, 7, date=LONG_AGO)
        reply = await repo.create_reply(
            account.id, chat.id, reply_at=LONG_AGO, message_ids=[message.id]
        )
        await clock.advance(90)
        bubble = await repo.add_outgoing(
            account.id, chat.id, text="hi", reply_id=reply.id, bubble_index=0, random_id=42
        )
        sent = await repo.update_reply(reply.id, state="sent")
        profile = await repo.put_style_profile(account.id, {"counters": {}})

    later = LONG_AGO + timedelta(seconds=90)
    assert sent.finished_at == later
    assert bubble.date == later
    assert profile.updated_at == later
