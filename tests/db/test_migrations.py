"""The Alembic history on both backends: round trip, no drift from the models, constraints."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from twin.db import migrate
from twin.db.base import metadata
from twin.db.engine import create_engine
from twin.db.tables_knowledge import BACKEND_INDEX_OBJECTS
from twin.errors import ConfigError

TABLES = {
    "accounts",
    "account_safety",
    "app_login_links",
    "cluster_processes",
    "rate_windows",
    "app_sessions",
    "api_keys",
    "account_settings",
    "chats",
    "contact_facts",
    "contacts",
    "corrections",
    "drafts",
    "entities",
    "events",
    "knowledge_chunks",
    "knowledge_docs",
    "messages",
    "owner_activity",
    "replies",
    "safety_events",
    "twin_styles",
    "twins",
    "webhook_deliveries",
    "style_evals",
}


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            return names - BACKEND_INDEX_OBJECTS
    finally:
        await engine.dispose()


def _not_backend_index(obj, name, type_, reflected, compare_to) -> bool:
    """The knowledge base's lexical index is each backend's own (twin/db/tables_knowledge.py)."""
    return name not in BACKEND_INDEX_OBJECTS


async def _diff(url: str, target: sa.MetaData) -> list:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def compare(sync_connection):
                context = MigrationContext.configure(
                    sync_connection,
                    opts={"compare_type": True, "include_object": _not_backend_index},
                )
                return compare_metadata(context, target)

            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(engine_url: str) -> None:
    assert await migrate.current(engine_url) is None

    await migrate.upgrade(engine_url)
    assert await migrate.current(engine_url) == migrate.head()
    assert await migrate.is_up_to_date(engine_url)
    assert await _tables(engine_url) == TABLES | {"alembic_version"}

    await migrate.downgrade(engine_url, "base")
    assert await migrate.current(engine_url) is None
    assert await _tables(engine_url) == {"alembic_version"}

    await migrate.upgrade(engine_url, "head")
    assert await migrate.current(engine_url) == migrate.head()
    assert await _tables(engine_url) >= TABLES


async def test_the_start_reads_what_alembic_would_without_it(engine_url: str) -> None:
    """The check at every start (twin.lifecycle) reads the stored and the newest revision
    without Alembic; they are Alembic's own, at every step."""
    assert migrate.newest_revision() == migrate.head()
    assert await migrate.stored_revision(engine_url) is None  # no alembic_version yet
    await migrate.upgrade(engine_url, "0010")
    assert await migrate.stored_revision(engine_url) == "0010" == await migrate.current(engine_url)
    await migrate.upgrade(engine_url)
    assert await migrate.stored_revision(engine_url) == migrate.head()
    await migrate.downgrade(engine_url, "base")  # the table stays, empty
    assert await migrate.stored_revision(engine_url) is None


async def test_upgrade_is_idempotent(migrated_url: str) -> None:
    await migrate.upgrade(migrated_url)
    assert await migrate.current(migrated_url) == migrate.head()


async def test_models_match_migrations(migrated_url: str) -> None:
    assert await _diff(migrated_url, metadata) == []


async def test_drift_check_notices_a_model_change(migrated_url: str) -> None:
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["chats"].append_column(sa.Column("mood", sa.String(16)))
    diff = await _diff(migrated_url, changed)
    assert [entry[0] for entry in diff] == ["add_column"]


async def test_constraints_are_enforced(migrated_url: str) -> None:
    """Foreign keys (ON for SQLite connections) and CHECKs come from the migration."""
    engine = create_engine(migrated_url)
    try:
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(
                    sa.text("INSERT INTO chats (account_id, peer_id) VALUES (999, 1)")
                )
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(sa.text("INSERT INTO accounts (name, status) "
                                                 "VALUES ('x', 'bogus')"))
    finally:
        await engine.dispose()


async def test_sqlite_connection_pragmas(tmp_path) -> None:
    path = tmp_path / "nested" / "dir" / "twin.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            pragma = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await engine.dispose()
    assert path.exists()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 10_000,
        "synchronous": 1,  # NORMAL
    }


def test_unsupported_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported"):
        create_engine("mysql+aiomysql://localhost/twin")


def test_config_has_no_ini_and_points_at_the_migrations() -> None:
    config = migrate.alembic_config("postgresql+asyncpg://u:p%40ss@h/db")
    assert config.config_file_name is None
    assert config.get_main_option("sqlalchemy.url") == "postgresql+asyncpg://u:p%40ss@h/db"
    assert (migrate.MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


def test_sync_callers(tmp_path) -> None:
    """`twin migrate` calls the coroutines with asyncio.run; a missing directory is created."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'state' / 'twin.db'}"
    asyncio.run(migrate.upgrade(url))
    assert asyncio.run(migrate.current(url)) == migrate.head()
    asyncio.run(migrate.downgrade(url, "base"))
    assert asyncio.run(migrate.current(url)) is None


def test_env_opens_its_own_engine_without_a_connection(tmp_path) -> None:
    """Plain Alembic commands (no connection handed over) run env.py's own async engine."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    command.upgrade(migrate.alembic_config(url), "head")
    assert asyncio.run(migrate.current(url)) == migrate.head()


async def test_phantom_accounts_are_removed_and_real_ones_kept(engine_url: str) -> None:
    """Issue 11.1: accounts that API reads created (never logged in, owning nothing) go; an
    account that was logged in, or owns any row, stays."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(engine_url))
    await migrate.upgrade(engine_url, script.get_revision("0005").down_revision)
    engine = create_engine(engine_url)
    try:
        async with engine.begin() as connection:
            for name, status, user_id in [
                ("typo1", "new", None),
                ("typo2", "code_sent", None),
                ("owner", "authorized", 42),
                ("logged_out", "logged_out", 43),
                ("has_chat", "new", None),
                ("has_settings", "new", None),
            ]:
                await connection.execute(
                    sa.text(
                        "INSERT INTO accounts (name, status, tg_user_id, enabled, created_at, "
                        "updated_at) VALUES (:name, :status, :user_id, true, CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"name": name, "status": status, "user_id": user_id},
                )
            ids = dict((await connection.execute(sa.text("SELECT name, id FROM accounts"))).all())
            await connection.execute(
                sa.text(
                    "INSERT INTO chats (account_id, peer_id, kind, is_contact, is_bot, "
                    "created_at, updated_at) VALUES (:a, 7, 'private', false, false, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"a": ids["has_chat"]},
            )
            await connection.execute(
                sa.text(
                    "INSERT INTO account_settings (account_id, data, updated_at) "
                    "VALUES (:a, '{}', CURRENT_TIMESTAMP)"
                ),
                {"a": ids["has_settings"]},
            )
        await migrate.upgrade(engine_url)
        async with engine.connect() as connection:
            names = set((await connection.execute(sa.text("SELECT name FROM accounts"))).scalars())
    finally:
        await engine.dispose()
    assert names == {"owner", "logged_out", "has_chat", "has_settings"}


async def test_channels_migration_keeps_telegram_data(engine_url: str) -> None:
    """Issue 14.2: existing accounts become Telegram channel instances and their chats
    Telegram conversations; nothing is rewritten or lost."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(engine_url))
    await migrate.upgrade(engine_url, script.get_revision("0008").down_revision)
    engine = create_engine(engine_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO accounts (name, status, tg_user_id, enabled, created_at, "
                    "updated_at) VALUES ('owner', 'authorized', 42, true, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                )
            )
            account = (await connection.execute(sa.text("SELECT id FROM accounts"))).scalar()
            await connection.execute(
                sa.text(
                    "INSERT INTO chats (account_id, peer_id, kind, title, is_contact, is_bot, "
                    "summary, created_at, updated_at) VALUES (:a, 7, 'private', 'Carl', true, "
                    "false, 'talked about cats', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"a": account},
            )
        await migrate.upgrade(engine_url)
        async with engine.connect() as connection:
            accounts = (
                await connection.execute(sa.text("SELECT name, tg_user_id, channel FROM accounts"))
            ).all()
            chats = (
                await connection.execute(
                    sa.text("SELECT peer_id, title, summary, external_id FROM chats")
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(a) for a in accounts] == [("owner", 42, "telegram")]
    assert [tuple(c) for c in chats] == [(7, "Carl", "talked about cats", None)]


async def test_style_profiles_move_to_their_twins(engine_url: str) -> None:
    """Issue 14.1: each account's style profile becomes its twin's (no twin set: `default`,
    created when missing); of several accounts of one twin the newest profile is kept."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(engine_url))
    await migrate.upgrade(engine_url, script.get_revision("0011").down_revision)
    engine = create_engine(engine_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO twins (name, settings, voice, created_at, updated_at) VALUES "
                    "('sales', '{}', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            sales = (await connection.execute(sa.text("SELECT id FROM twins"))).scalar()
            for name, twin_id in [("home", None), ("shop", sales), ("shop2", sales)]:
                await connection.execute(
                    sa.text(
                        "INSERT INTO accounts (name, status, enabled, channel, twin_id, "
                        "created_at, updated_at) VALUES (:n, 'authorized', true, 'telegram', "
                        ":t, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"n": name, "t": twin_id},
                )
            ids = dict((await connection.execute(sa.text("SELECT name, id FROM accounts"))).all())
            for account, data, when in [
                ("home", '{"n": 1}', datetime(2026, 1, 1, tzinfo=UTC)),
                ("shop", '{"n": 2}', datetime(2026, 1, 2, tzinfo=UTC)),
                ("shop2", '{"n": 3}', datetime(2026, 1, 3, tzinfo=UTC)),
            ]:
                await connection.execute(
                    sa.text(
                        "INSERT INTO style_profiles (account_id, data, updated_at) "
                        "VALUES (:a, :d, :w)"
                    ),
                    {"a": ids[account], "d": data, "w": when},
                )
        await migrate.upgrade(engine_url)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    sa.text(
                        "SELECT t.name, s.data FROM twin_styles s JOIN twins t ON t.id = s.twin_id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    styles = {name: json.loads(data) if isinstance(data, str) else data for name, data in rows}
    assert styles == {"default": {"n": 1}, "sales": {"n": 3}}


async def test_existing_chats_start_contact_memory_at_their_newest_message(
    engine_url: str,
) -> None:
    """Issue 16: after the upgrade only what is said from now on is read for contact memory,
    never every old conversation at once."""
    await migrate.upgrade(engine_url, "0012")
    engine = create_engine(engine_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO accounts (name, status, enabled, channel, created_at, updated_at)"
                    " VALUES ('owner', 'authorized', true, 'telegram', CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                )
            )
            account = (await connection.execute(sa.text("SELECT id FROM accounts"))).scalar()
            for peer in (7, 8):
                await connection.execute(
                    sa.text(
                        "INSERT INTO chats (account_id, peer_id, kind, is_contact, is_bot, "
                        "last_incoming_at, created_at, updated_at) VALUES (:a, :p, 'private', "
                        "false, false, :at, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"a": account, "p": peer, "at": datetime(2026, 1, peer, tzinfo=UTC)},
                )
            chat = (
                await connection.execute(sa.text("SELECT id FROM chats WHERE peer_id = 7"))
            ).scalar()
            for tg_id in (1, 2, 3):
                await connection.execute(
                    sa.text(
                        "INSERT INTO messages (account_id, chat_id, tg_message_id, direction, "
                        "kind, date, state, created_at, updated_at) VALUES (:a, :c, :m, "
                        "'incoming', 'text', CURRENT_TIMESTAMP, 'sent', CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"a": account, "c": chat, "m": tg_id},
                )
        await migrate.upgrade(engine_url)
        async with engine.connect() as connection:
            newest = (
                await connection.execute(sa.text("SELECT max(id) FROM messages"))
            ).scalar()
            rows = (
                await connection.execute(
                    sa.text(
                        "SELECT peer_id, memory_upto_message_id, memory_at IS NOT NULL "
                        "FROM chats ORDER BY peer_id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(7, newest, True), (8, None, True)]
