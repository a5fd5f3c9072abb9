"""Lean execution of the reply pipeline's prepared statements on the sqlite3 driver.

SQLAlchemy's per-statement machinery (cache-key lookup, execution context, parameter and result
processing, Row construction) costs more than SQLite itself takes to run a one-row indexed
statement; the pipeline runs about twenty of them for every reply. So the statements of its hot
path are marked with `prepared()`, and a unit of work on the event loop (twin.db.engine.
SQLiteRunner.run_inline) gets a `LeanConnection`: it runs a prepared statement with SQLAlchemy's
own compiled SQL, bind processors and result processors (compiled once per statement and set of
parameter names) straight on the sqlite3 cursor, inside the same transaction, and hands
everything else to the SQLAlchemy connection it wraps. The repository code is the same on both
paths; tests/db/test_lean.py checks that both store and return the same.

Only SQLAlchemy's public compilation API is used (compile with column_keys, positiontup, binds,
insert_prefetch/update_prefetch, exported_columns, TypeEngine.bind_processor/result_processor);
statements needing what it does not do (expanding IN lists) fall back to the wrapped connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["LeanConnection", "prepared"]

S = TypeVar("S")

_PREPARED: dict[int, Any] = {}  # id -> statement (held, so the id is never reused)


def prepared(statement: S) -> S:
    """Mark a module-level statement for lean execution; returns it unchanged."""
    _PREPARED[id(statement)] = statement
    return statement


class LeanRow(tuple):
    """A result row: a tuple with attribute access and `_mapping`, like SQLAlchemy's Row."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._keys, self, strict=True))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    binds: tuple[tuple[str, Any, Any], ...]  # (parameter name, default, bind processor)
    defaults: tuple[tuple[str, Any], ...]  # (parameter name, column default) computed per call
    results: tuple[Any, ...] | None  # result processor per column; None: no rows
    row: type[LeanRow]


_plans: dict[tuple[int, frozenset[str]], _Plan | None] = {}


def _plan(statement: Any, dialect: Any, keys: frozenset[str]) -> _Plan | None:
    dml = isinstance(statement, sa.sql.dml.UpdateBase)
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys) if dml else None)
    if compiled.positiontup is None or "POSTCOMPILE" in compiled.string:
        return None  # not positional, or expanding parameters: SQLAlchemy renders those
    defaults = tuple(
        [(column.key, column.default) for column in compiled.insert_prefetch]
        + [(column.key, column.onupdate) for column in compiled.update_prefetch]
    )
    binds = tuple(
        (name, compiled.binds[name].value, compiled.binds[name].type.bind_processor(dialect))
        for name in compiled.positiontup
    )
    columns = list(statement.exported_columns)  # the selected or RETURNING columns
    names = tuple(statement.exported_columns.keys())
    row = type(
        "LeanRow", (LeanRow,), {"_keys": names, "_index": {k: i for i, k in enumerate(names)}}
    )
    results = (
        tuple(column.type.result_processor(dialect, None) for column in columns)
        if columns
        else None
    )
    return _Plan(compiled.string, binds, defaults, results, row)


def _default_value(default: Any) -> Any:
    return default.arg(None) if default.is_callable else default.arg


class LeanResult:
    """The part of SQLAlchemy's Result API the repository uses, over fetched rows."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[LeanRow]:
        return iter(self._rows)

    def all(self) -> list[LeanRow]:
        return list(self._rows)

    def first(self) -> LeanRow | None:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> LeanRow | None:
        if len(self._rows) > 1:
            raise sa.exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self.first()

    def one(self) -> LeanRow:
        if not self._rows:
            raise sa.exc.NoResultFound("No row was found when one was required")
        return self.one_or_none()  # type: ignore[return-value]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> LeanResult:
        """The first column's values, with the same methods."""
        return LeanResult([row[0] for row in self._rows], self.rowcount)


class LeanConnection:
    """A SQLAlchemy Connection for one unit of work that runs `prepared()` statements itself
    (on SQLite's sqlite3 driver) and passes everything else to the connection it wraps."""

    __slots__ = ("_connection", "_cursor", "dialect")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect
        self._cursor: sqlite3.Cursor | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        if id(statement) not in _PREPARED or not isinstance(parameters, Mapping | None):
            return self._connection.execute(statement, parameters)
        params = parameters or {}
        key = (id(statement), frozenset(params))
        try:
            plan = _plans[key]
        except KeyError:
            plan = _plans[key] = _plan(statement, self.dialect, key[1])
        if plan is None:
            return self._connection.execute(statement, parameters)
        if plan.defaults:
            params = {**{name: _default_value(d) for name, d in plan.defaults}, **params}
        values = [
            params.get(name, default) if process is None else process(params.get(name, default))
            for name, default, process in plan.binds
        ]
        cursor = self._cursor
        if cursor is None:
            cursor = self._cursor = self._connection.connection.driver_connection.cursor()
        try:
            cursor.execute(plan.sql, values)
            fetched = cursor.fetchall() if plan.results is not None else []
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(
                plan.sql, values, exc, sqlite3.Error, dialect=self.dialect
            ) from exc
        if plan.results is not None:
            row, processors = plan.row, plan.results
            fetched = [
                row(
                    value if process is None else process(value)
                    for value, process in zip(raw, processors, strict=True)
                )
                for raw in fetched
            ]
        return LeanResult(fetched, cursor.rowcount)
