"""What counts as the database being unavailable (retry later) rather than a bug: real errors
from real SQLite and PostgreSQL, through SQLAlchemy as the repository meets them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from twin.db.engine import is_outage


def _sqlite_error(url: str, statement: str) -> BaseException:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_sqlite_read_only_database_is_an_outage(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sa.create_engine(f"sqlite:///{path}").begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    error = _sqlite_error(f"sqlite:///file:{path}?mode=ro&uri=true", "INSERT INTO t VALUES (1)")
    assert is_outage(error)


def test_sqlite_bad_statement_is_not_an_outage(tmp_path: Path) -> None:
    error = _sqlite_error(f"sqlite:///{tmp_path / 't.db'}", "SELECT * FROM no_such_table")
    assert not is_outage(error)


@pytest.mark.postgres
async def test_postgresql_read_only_transaction_is_an_outage_a_syntax_error_is_not() -> None:
    base = os.environ.get("TWIN_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TWIN_TEST_POSTGRES_URL is not set")
    engine = create_async_engine(base)
    errors = []
    try:
        for statements in (
            # as a hot standby answers during a failover (SQLSTATE 25006)
            ["SET TRANSACTION READ ONLY", "CREATE TEMP TABLE t (x int)"],
            ["SELEC 1"],  # a bug, not an outage (42601)
        ):
            try:
                async with engine.begin() as connection:
                    for statement in statements:
                        await connection.exec_driver_sql(statement)
            except sa.exc.DBAPIError as exc:
                errors.append(exc)
    finally:
        await engine.dispose()
    read_only, syntax = errors
    assert is_outage(read_only)
    assert not is_outage(syntax)
