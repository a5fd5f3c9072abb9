"""Database fixtures: every test runs on SQLite, and on PostgreSQL when TWIN_TEST_POSTGRES_URL
is set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test).

PostgreSQL tests share one scratch database per pytest process (created next to the given one,
dropped at the end). Each test starts from an empty `public` schema and the schema is dropped
and recreated after it, so tests are isolated and every schema comes from the migrations.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from twin.config import Settings
from twin.db import migrate
from twin.db.engine import Database, database
from twin.db.repo import Repository

POSTGRES_ENV = "TWIN_TEST_POSTGRES_URL"
SECRET = "correct horse battery staple"

BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this pytest process (skips without the env var)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"twin_test_{worker}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_execute(base, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def engine_url(backend_url: str) -> AsyncIterator[str]:
    """An empty database: a file in tmp_path, or the scratch PostgreSQL database."""
    try:
        yield backend_url
    finally:
        if backend_url.startswith("postgresql"):
            await _drop_schema(backend_url)


async def _drop_schema(url: str) -> None:
    """Empty the scratch database. A statement a stopped app's cancelled task had already
    sent may still be running at the server (a cancelled client does not stop it): the DROP can
    then deadlock with it once — PostgreSQL picks a victim — and is simply run again."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(3):
        try:
            await _execute(
                url,
                "SET lock_timeout = '10s'",
                "DROP SCHEMA public CASCADE",
                "CREATE SCHEMA public",
            )
            return
        except DBAPIError as exc:
            if "deadlock" not in str(exc) or attempt == 2:
                raise


@pytest.fixture
async def migrated_postgres(postgres_url: str) -> AsyncIterator[str]:
    """The scratch PostgreSQL database, migrated; emptied afterwards."""
    await migrate.upgrade(postgres_url)
    try:
        yield postgres_url
    finally:
        await _drop_schema(postgres_url)


@pytest.fixture
async def migrated_url(engine_url: str) -> str:
    await migrate.upgrade(engine_url)
    return engine_url


def make_settings(url: str, tmp_path, secret: str | None = SECRET) -> Settings:
    return Settings(
        storage={"url": url},
        security={"secret_key": secret, "key_file": tmp_path / "keys" / "secret.key"},
    )


@pytest.fixture
async def db(migrated_url: str, tmp_path) -> AsyncIterator[Database]:
    async with database(make_settings(migrated_url, tmp_path)) as opened:
        yield opened


@pytest.fixture
def repo(db: Database) -> Repository:
    return db.repo


@pytest.fixture
async def account(repo: Repository):
    return await repo.get_or_create_account("default")


@pytest.fixture
async def chat(repo: Repository, account):
    created, _ = await repo.upsert_chat(account.id, 1001, kind="private", title="Alice")
    return created
