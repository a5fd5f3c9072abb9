"""The owner's last activity per account (owner_activity) and a chat's takeover start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twin.db.repo import Repository

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def test_activity_only_moves_forward(repo: Repository, account) -> None:
    assert await repo.owner_activity(account.id) is None

    first = await repo.note_owner_activity(account.id, T0)
    assert (first.account_id, first.active_at, first.online_until) == (account.id, T0, None)
    # An older activity handed over late (a catch-up) changes nothing.
    assert (await repo.note_owner_activity(account.id, T0 - timedelta(hours=1))).active_at == T0
    later = await repo.note_owner_activity(account.id, T0 + timedelta(seconds=5))
    assert later.active_at == T0 + timedelta(seconds=5)
    assert await repo.owner_activity(account.id) == later


async def test_online_status_and_what_the_decision_reads(repo: Repository, account) -> None:
    expires = T0 + timedelta(minutes=5)
    online = await repo.set_owner_status(account.id, T0, expires)
    assert (online.active_at, online.online_until) == (T0, expires)
    assert online.active_as_of(T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=1)
    assert online.active_as_of(expires + timedelta(seconds=1)) == T0  # expired: last seen

    # A message meanwhile keeps the status; going offline clears it, last seen when it said.
    await repo.note_owner_activity(account.id, T0 + timedelta(minutes=2))
    assert (await repo.owner_activity(account.id)).online_until == expires
    offline = await repo.set_owner_status(account.id, T0 + timedelta(minutes=3), None)
    assert (offline.active_at, offline.online_until) == (T0 + timedelta(minutes=3), None)
    assert offline.active_as_of(T0 + timedelta(minutes=4)) == T0 + timedelta(minutes=3)


async def test_activity_in_a_transaction_and_per_account(repo: Repository, account) -> None:
    other = await repo.get_or_create_account("other")
    record = await repo.transaction(lambda tx: tx.note_owner_activity(account.id, T0))
    assert record.active_at == T0
    assert await repo.transaction(lambda tx: tx.owner_activity(other.id)) is None


async def test_takeover_start_is_stored_and_cleared(repo: Repository, chat) -> None:
    until = T0 + timedelta(minutes=30)
    paused = await repo.update_chat(chat.id, paused_until=until, takeover_started_at=T0)
    assert (paused.paused_until, paused.takeover_started_at) == (until, T0)
    assert paused.takeover_since(T0 + timedelta(minutes=1)) == T0
    assert paused.takeover_since(until) is None  # the pause is over
    cleared = await repo.update_chat(chat.id, paused_until=None, takeover_started_at=None)
    assert cleared.takeover_started_at is None


async def test_the_migration_keeps_what_was_known(engine_url: str, tmp_path) -> None:
    """0015 fills owner_activity from the chats' newest owner message per account."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.db.conftest import make_settings
    from twin.db import migrate
    from twin.db.engine import database

    await migrate.upgrade(engine_url, "0014")  # before owner_activity
    engine = create_async_engine(engine_url)
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO accounts (id, name) VALUES (1, 'default')"))
        for peer, at in ((10, T0), (11, T0 + timedelta(minutes=3)), (12, None)):
            await connection.execute(
                text(
                    "INSERT INTO chats (account_id, peer_id, last_owner_activity_at) "
                    "VALUES (1, :peer, :at)"
                ),
                {"peer": peer, "at": at},
            )
    await engine.dispose()
    await migrate.upgrade(engine_url)
    async with database(make_settings(engine_url, tmp_path)) as db:
        activity = await db.repo.owner_activity(1)
    assert activity is not None and activity.active_at == T0 + timedelta(minutes=3)
