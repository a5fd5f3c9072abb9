"""Twins: the named personas accounts and channel instances answer as, and the behaviour
overrides an account's replies use (its twin's, then its own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import TwinRecord
from twin.db.repo._base import RepoBase, conflict_on_integrity
from twin.db.tables import Account, AccountSettings, Twin
from twin.errors import NotFound

T = Twin.__table__
A = Account.__table__
S = AccountSettings.__table__

DEFAULT_TWIN = "default"

# The twin an account answers as (no twin set: "default"): the one join condition of every
# query that goes from an account to its twin.
ACCOUNT_TWIN = sa.or_(
    T.c.id == A.c.twin_id, sa.and_(A.c.twin_id.is_(None), T.c.name == DEFAULT_TWIN)
)

# An account's twin's overrides and its own, in one round trip (no twin set: "default").
_LAYERS = (
    sa.select(T.c.settings, S.c.data)
    .select_from(A.outerjoin(T, ACCOUNT_TWIN).outerjoin(S, S.c.account_id == A.c.id))
    .where(A.c.id == sa.bindparam("_account_id"))
)


def layered(twin: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> dict[str, Any]:
    """The account's own overrides over its twin's, section by section."""
    result: dict[str, Any] = {
        name: dict(section) for name, section in (twin or {}).items() if section
    }
    for name, section in (own or {}).items():
        if section:
            result[name] = {**result.get(name, {}), **section}
    return result


class TwinsMixin(RepoBase):
    async def behaviour_overrides(self, account_id: int) -> dict[str, Any]:
        """What the account's replies use over config.toml: its twin's overrides, then its
        own (`get_settings` is its own only)."""
        return await self._read(lambda c: self._behaviour_overrides(c, account_id))

    def _behaviour_overrides(self, c: Connection, account_id: int) -> dict[str, Any]:
        row = c.execute(_LAYERS, {"_account_id": account_id}).first()
        if row is None:
            return {}
        return layered(row[0], row[1])

    async def twin_voice(self, account_id: int) -> dict[str, Any]:
        """The voice of the twin the account answers as ({}: the configured one)."""
        query = (
            sa.select(T.c.voice).select_from(A.join(T, ACCOUNT_TWIN)).where(A.c.id == account_id)
        )
        return await self._read(lambda c: dict(c.execute(query).scalar() or {}))

    async def list_twins(self) -> list[TwinRecord]:
        query = sa.select(T).order_by(T.c.name)
        return await self._read(
            lambda c: [TwinRecord.from_row(row._mapping) for row in c.execute(query)]
        )

    async def get_twin(self, name: str) -> TwinRecord:
        def work(c: Connection) -> TwinRecord:
            row = c.execute(sa.select(T).where(T.c.name == name)).first()
            if row is None:
                raise NotFound(f"no twin named '{name}'")
            return TwinRecord.from_row(row._mapping)

        return await self._read(work)

    async def create_twin(
        self, name: str, settings: Mapping[str, Any], voice: Mapping[str, Any]
    ) -> TwinRecord:
        def work(c: Connection) -> TwinRecord:
            with conflict_on_integrity(f"a twin named '{name}' exists already"):
                row = c.execute(
                    sa.insert(T)
                    .values(name=name, settings=dict(settings), voice=dict(voice))
                    .returning(*T.c)
                ).one()
            return TwinRecord.from_row(row._mapping)

        return await self._run(work)

    async def ensure_twin(self, name: str) -> TwinRecord:
        """The twin, created empty (config.toml's values) when missing."""

        def work(c: Connection) -> TwinRecord:
            insert = self._insert(c, T).values(name=name, settings={}, voice={})
            c.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            row = c.execute(sa.select(T).where(T.c.name == name)).one()
            return TwinRecord.from_row(row._mapping)

        return await self._run(work)

    async def update_twin(
        self, name: str, settings: Mapping[str, Any], voice: Mapping[str, Any]
    ) -> TwinRecord:
        def work(c: Connection) -> TwinRecord:
            row = c.execute(
                sa.update(T)
                .where(T.c.name == name)
                .values(settings=dict(settings), voice=dict(voice))
                .returning(*T.c)
            ).first()
            if row is None:
                raise NotFound(f"no twin named '{name}'")
            return TwinRecord.from_row(row._mapping)

        return await self._run(work)

    async def delete_twin(self, name: str) -> None:
        def work(c: Connection) -> None:
            if c.execute(sa.delete(T).where(T.c.name == name)).rowcount == 0:
                raise NotFound(f"no twin named '{name}'")

        await self._run(work)

    async def twin_accounts(
        self, twin_id: int, *, default: bool = False, channel: str | None = None
    ) -> list[str]:
        """Names of the accounts answering as this twin (with `default`, also those with
        none set; with `channel`, only that channel's: "telegram" for Telegram accounts)."""
        where = A.c.twin_id == twin_id
        if default:
            where = sa.or_(where, A.c.twin_id.is_(None))
        if channel is not None:
            where = sa.and_(where, A.c.channel == channel)
        query = sa.select(A.c.name).where(where).order_by(A.c.name)
        return await self._read(lambda c: list(c.execute(query).scalars()))

    async def set_account_twin(self, account_id: int, twin_id: int | None) -> None:
        await self._run(
            lambda c: c.execute(sa.update(A).where(A.c.id == account_id).values(twin_id=twin_id))
        )
