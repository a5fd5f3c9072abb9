"""API keys: created with their hash, listed, found by hash, revoked, marked used."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import ApiKeyRecord
from twin.db.repo._base import RepoBase, conflict_on_integrity
from twin.db.tables import Account, ApiKey
from twin.errors import NotFound

K = ApiKey.__table__
A = Account.__table__

_KEYS = sa.select(K, A.c.name.label("account")).select_from(
    K.outerjoin(A, A.c.id == K.c.account_id)
)


class KeysMixin(RepoBase):
    async def create_key(
        self,
        name: str,
        *,
        prefix: str,
        hash: str,
        scopes: Sequence[str],
        account_id: int | None = None,
        twin: str | None = None,
    ) -> ApiKeyRecord:
        """Store a new key; Conflict when the name is taken."""

        def work(c: Connection) -> ApiKeyRecord:
            values: dict[str, Any] = {
                "name": name,
                "prefix": prefix,
                "hash": hash,
                "scopes": list(scopes),
                "account_id": account_id,
                "twin": twin,
            }
            with conflict_on_integrity(f"an API key named '{name}' exists already"):
                key_id = c.execute(sa.insert(K).values(**values).returning(K.c.id)).scalar_one()
            return ApiKeyRecord.from_row(c.execute(_KEYS.where(K.c.id == key_id)).one()._mapping)

        return await self._run(work)

    async def list_keys(self) -> list[ApiKeyRecord]:
        query = _KEYS.order_by(K.c.created_at, K.c.id)
        return await self._read(
            lambda c: [ApiKeyRecord.from_row(row._mapping) for row in c.execute(query)]
        )

    async def key_by_hash(self, hash: str) -> ApiKeyRecord | None:
        query = _KEYS.where(K.c.hash == hash)

        def work(c: Connection) -> ApiKeyRecord | None:
            row = c.execute(query).first()
            return None if row is None else ApiKeyRecord.from_row(row._mapping)

        return await self._read(work)

    async def revoke_key(self, name: str, at: datetime) -> ApiKeyRecord:
        """Revoke the key (once: a revoked key keeps its first revocation); NotFound."""

        def work(c: Connection) -> ApiKeyRecord:
            c.execute(
                sa.update(K).where(K.c.name == name, K.c.revoked_at.is_(None)).values(revoked_at=at)
            )
            row = c.execute(_KEYS.where(K.c.name == name)).first()
            if row is None:
                raise NotFound(f"no API key named '{name}'")
            return ApiKeyRecord.from_row(row._mapping)

        return await self._run(work)

    async def key_used(self, key_id: int, at: datetime) -> None:
        await self._run(
            lambda c: c.execute(sa.update(K).where(K.c.id == key_id).values(last_used_at=at))
        )
