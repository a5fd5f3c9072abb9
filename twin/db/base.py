"""Declarative base, the constraint naming convention and the column types shared by the tables.

Every constraint and index gets a deterministic name (`ix_…`, `uq_…`, `ck_…`, `fk_…`, `pk_…`),
so Alembic can drop or alter them by name on both SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from twin.ports import Clock

# SQLite's lower() folds ASCII only: this function, registered on every SQLite connection
# (twin.db.engine), folds any script (the searches of twin.db.repo.conversations).
SQLITE_FOLD = "twin_casefold"


def sqlite_casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# The clock of the unit of work being run: the repository sets it around each one (see
# twin.db.repo._base.RepoBase), so the column defaults below (created_at, updated_at and its
# onupdate, an event's created_at), on the regular and the lean path alike, stamp the injected
# clock's time rather than the system's.
stamped_by: ContextVar[Clock | None] = ContextVar("stamped_by", default=None)


def utcnow() -> datetime:
    """Now by the clock of the current unit of work (the system clock outside one)."""
    clock = stamped_by.get()
    return datetime.now(UTC) if clock is None else clock.now()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """`timestamp with time zone` that always hands back aware UTC datetimes.

    SQLite keeps no zone, so values are normalised to UTC on the way in (naive datetimes are
    refused: guessing their zone is a silent bug) and tagged UTC on the way out. Stored UTC text
    sorts chronologically, so range queries behave the same on both backends.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # SQLite hands back the stored text: parse it straight to an aware datetime, several
        # times faster than the generic path (regex parse, then a tzinfo replace) that every
        # timestamp of every row read would otherwise take.
        fallback = super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if isinstance(value, str):
                try:
                    return parse_utc(value)
                except ValueError:
                    pass
            return fallback(value) if fallback is not None else value

        return process


def parse_utc(text: str) -> datetime:
    """SQLite's stored UTC text ('YYYY-MM-DD HH:MM:SS[.ffffff]') as an aware UTC datetime."""
    return datetime.fromisoformat(text + "+00:00")


# Surrogate keys: BIGINT on PostgreSQL; INTEGER on SQLite, where only an INTEGER PRIMARY KEY
# becomes the auto-incrementing rowid.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime()}


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's text: `column` holds one of `values`."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
