"""API keys in storage (issue 14, item 4) on SQLite and PostgreSQL: the repository, and
migration 0009 on a database that already holds data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from twin.db import migrate
from twin.db.engine import create_engine
from twin.db.repo import Repository
from twin.errors import Conflict, NotFound

WHEN = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def test_keys_round_trip(repo: Repository, account) -> None:
    created = await repo.create_key(
        "n8n", prefix="twin_abcdefg", hash="a" * 64, scopes=["chat"], account_id=account.id,
        twin="sales",
    )
    assert (created.name, created.prefix, created.scopes) == ("n8n", "twin_abcdefg", ["chat"])
    assert (created.account, created.account_id, created.twin) == ("default", account.id, "sales")
    assert created.last_used_at is None and created.revoked_at is None
    assert await repo.key_by_hash("a" * 64) == created
    assert await repo.key_by_hash("b" * 64) is None

    unbound = await repo.create_key("ops", prefix="twin_zzz", hash="b" * 64, scopes=["admin"])
    assert unbound.account is None and unbound.twin is None
    assert [k.name for k in await repo.list_keys()] == ["n8n", "ops"]

    await repo.key_used(created.id, WHEN)
    used = await repo.key_by_hash("a" * 64)
    assert used is not None and used.last_used_at == WHEN


async def test_names_and_hashes_are_unique(repo: Repository) -> None:
    await repo.create_key("n8n", prefix="twin_1", hash="1" * 64, scopes=["chat"])
    with pytest.raises(Conflict):
        await repo.create_key("n8n", prefix="twin_2", hash="2" * 64, scopes=["chat"])
    with pytest.raises(Conflict):
        await repo.create_key("other", prefix="twin_1", hash="1" * 64, scopes=["chat"])
    assert [k.name for k in await repo.list_keys()] == ["n8n"]


async def test_a_revoked_key_stays_listed_with_its_first_revocation(repo: Repository) -> None:
    await repo.create_key("n8n", prefix="twin_1", hash="1" * 64, scopes=["chat"])
    revoked = await repo.revoke_key("n8n", WHEN)
    assert revoked.revoked_at == WHEN
    again = await repo.revoke_key("n8n", datetime(2027, 1, 1, tzinfo=UTC))
    assert again.revoked_at == WHEN
    [listed] = await repo.list_keys()
    assert listed.revoked_at == WHEN
    with pytest.raises(NotFound):
        await repo.revoke_key("nobody", WHEN)


async def test_the_keys_migration_keeps_existing_data(engine_url: str) -> None:
    """0009 adds `api_keys` to a database in use: its accounts, chats and events stay as they
    were, a key can be bound to an existing account, and downgrading drops only the keys."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(engine_url))
    before = script.get_revision("0009").down_revision
    await migrate.upgrade(engine_url, before)
    engine = create_engine(engine_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO accounts (name, status, tg_user_id, enabled, channel, "
                    "created_at, updated_at) VALUES ('owner', 'authorized', 42, true, "
                    "'telegram', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            account = (await connection.execute(sa.text("SELECT id FROM accounts"))).scalar()
            await connection.execute(
                sa.text(
                    "INSERT INTO chats (account_id, peer_id, kind, title, is_contact, is_bot, "
                    "created_at, updated_at) VALUES (:a, 7, 'private', 'Carl', true, false, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"a": account},
            )
            await connection.execute(
                sa.text(
                    "INSERT INTO events (type, data, account_id, created_at) "
                    "VALUES ('daemon.started', '{}', :a, CURRENT_TIMESTAMP)"
                ),
                {"a": account},
            )

        async def snapshot() -> tuple[list, list, list]:
            async with engine.connect() as connection:
                return (
                    [tuple(r) for r in await connection.execute(
                        sa.text("SELECT id, name, status, tg_user_id FROM accounts"))],
                    [tuple(r) for r in await connection.execute(
                        sa.text("SELECT account_id, peer_id, title FROM chats"))],
                    [tuple(r) for r in await connection.execute(
                        sa.text("SELECT id, type, account_id FROM events"))],
                )

        old = await snapshot()
        await migrate.upgrade(engine_url, "0009")
        assert await snapshot() == old
        async with engine.begin() as connection:
            count = await connection.execute(sa.text("SELECT count(*) FROM api_keys"))
            assert count.scalar() == 0
            await connection.execute(
                sa.text(
                    "INSERT INTO api_keys (name, prefix, hash, scopes, account_id) "
                    "VALUES ('n8n', 'twin_abc', :h, '[\"chat\"]', :a)"
                ),
                {"h": "c" * 64, "a": account},
            )
            row = (
                await connection.execute(
                    sa.text("SELECT name, account_id, created_at, revoked_at FROM api_keys")
                )
            ).one()
        assert row[0:2] == ("n8n", account) and row[2] is not None and row[3] is None
        await migrate.upgrade(engine_url)  # the rest of the history runs over it
        assert await snapshot() == old
        await migrate.downgrade(engine_url, before)
        assert await snapshot() == old
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert "api_keys" not in tables and {"accounts", "chats", "events"} <= tables
    finally:
        await engine.dispose()
