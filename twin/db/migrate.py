"""Alembic, driven from code: `twin migrate` and the tests call these coroutines.

There is no alembic.ini (the top-level layout is fixed): the Config is built here, pointing at
the migrations: the repository's top-level migrations/ folder in a source checkout (or an
editable install), `twin/_migrations` in an installed distribution (setup.py maps it there).
The migration runs inside the caller's event loop on one async connection
(`connection.run_sync`), which env.py picks up from `config.attributes`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

from twin.db.engine import create_engine
from twin.errors import ConfigError, TwinError

if TYPE_CHECKING:
    from alembic.config import Config

_PACKAGE = Path(__file__).resolve().parents[1]  # twin/
# First the copy inside an installed package, then the source tree's folder.
_CANDIDATES = (_PACKAGE / "_migrations", _PACKAGE.parent / "migrations")


def _find_migrations() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "env.py").is_file():
            return candidate
    return _CANDIDATES[0]


MIGRATIONS_DIR = _find_migrations()


class MigrationError(TwinError):
    """A migration left the database inconsistent (e.g. broken foreign keys on SQLite)."""


def alembic_config(url: str) -> Config:
    """An Alembic Config for `url`, without any ini file."""
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise ConfigError(
            [
                f"migrations not found (looked in {' and '.join(map(str, _CANDIDATES))}): "
                "reinstall twin"
            ]
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % (e.g. in a password) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (default: the newest)."""
    from alembic import command

    config = alembic_config(url)
    await _run(url, lambda connection: _with(config, connection, command.upgrade, revision))


async def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at `url` to `revision` ("base" removes every table)."""
    from alembic import command

    config = alembic_config(url)
    await _run(url, lambda connection: _with(config, connection, command.downgrade, revision))


async def current(url: str) -> str | None:
    """The revision the database is at, or None for an empty (unmigrated) database."""
    from alembic.runtime.migration import MigrationContext

    return await _run(
        url, lambda connection: MigrationContext.configure(connection).get_current_revision()
    )


def head() -> str | None:
    """The newest revision in migrations/versions."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def is_up_to_date(url: str) -> bool:
    return await current(url) == head()


# -- the check at every start, without Alembic ------------------------------------------------
# Alembic and what it imports (the PostgreSQL dialects too) take ~12 MB that a daemon whose
# schema is current never needs: the start reads the stored revision and the newest one with
# these, and loads Alembic only to upgrade.
_REVISION = re.compile(r'^revision(?:: [^=]+)? = ["\'](\w+)["\']', re.M)
_DOWN = re.compile(r'^down_revision(?:: [^=]+)? = ["\'](\w+)["\']', re.M)


def newest_revision() -> str | None:
    """The newest revision in migrations/versions: the one no other revises (None when that
    is not one revision: Alembic's `head()` decides then)."""
    revisions, revised = set(), set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        if found := _REVISION.search(source):
            revisions.add(found.group(1))
        if down := _DOWN.search(source):
            revised.add(down.group(1))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


async def stored_revision(url: str) -> str | None:
    """The revision stored in the database's `alembic_version`; None when it has none."""

    def read(connection: Connection) -> str | None:
        if not connection.dialect.has_table(connection, "alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        return rows[0][0] if len(rows) == 1 else None

    return await _run(url, read)


# Several processes starting at once on one PostgreSQL (replicas of one deployment) upgrade
# the schema one after the other: the lock is held until the upgrade's transaction ends, and
# the next one finds nothing left to do.
_MIGRATION_LOCK = (0x7477, 0)


def _with(config: Config, connection: Connection, action: Any, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": _MIGRATION_LOCK[0], "b": _MIGRATION_LOCK[1]},
        )
    config.attributes["connection"] = connection
    try:
        action(config, revision)
    finally:
        config.attributes.pop("connection", None)
    if connection.dialect.name == "sqlite":
        # Foreign keys are off while migrating (batch mode rebuilds tables); check them now.
        broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        if broken:
            raise MigrationError(f"foreign key violations after migrating: {broken[:5]}")


async def _run(url: str, work: Any) -> Any:
    engine = create_engine(url, poolclass=pool.NullPool, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()
