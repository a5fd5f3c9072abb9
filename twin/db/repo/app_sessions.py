"""The admin app's browser sessions and one-time login links (twin.services.app_sessions)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import AppSessionRecord
from twin.db.repo._base import RepoBase
from twin.db.tables import ApiKey
from twin.db.tables_app import AppLoginLink, AppSession

S = AppSession.__table__
L = AppLoginLink.__table__
K = ApiKey.__table__


class AppSessionsMixin(RepoBase):
    async def add_app_session(
        self,
        id_hash: str,
        *,
        principal: str,
        key_id: int | None,
        csrf: str,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        await self._run(
            lambda c: c.execute(
                sa.insert(S).values(
                    id_hash=id_hash,
                    principal=principal,
                    key_id=key_id,
                    csrf=csrf,
                    created_at=at,
                    last_seen_at=at,
                    expires_at=expires_at,
                )
            )
        )

    async def app_session(self, id_hash: str) -> AppSessionRecord | None:
        """The session, with whether its stored key (if any) was revoked since."""
        query = (
            sa.select(S, K.c.revoked_at.is_not(None).label("revoked"))
            .select_from(S.outerjoin(K, K.c.id == S.c.key_id))
            .where(S.c.id_hash == id_hash)
        )

        def work(c: Connection) -> AppSessionRecord | None:
            row = c.execute(query).first()
            return None if row is None else AppSessionRecord.from_row(row._mapping)

        return await self._read(work)

    async def touch_app_session(self, id_hash: str, at: datetime) -> None:
        await self._run(
            lambda c: c.execute(sa.update(S).where(S.c.id_hash == id_hash).values(last_seen_at=at))
        )

    async def delete_app_sessions(self, id_hash: str | None = None) -> int:
        """Sign one session out (`id_hash`), or every one; how many went."""
        statement = sa.delete(S)
        if id_hash is not None:
            statement = statement.where(S.c.id_hash == id_hash)
        return await self._run(lambda c: c.execute(statement).rowcount)

    async def add_login_link(self, token_hash: str, *, at: datetime, expires_at: datetime) -> None:
        await self._run(
            lambda c: c.execute(
                sa.insert(L).values(token_hash=token_hash, created_at=at, expires_at=expires_at)
            )
        )

    async def take_login_link(self, token_hash: str, now: datetime) -> bool:
        """Use a one-time login link: True once, if it exists and has not expired (it is gone
        either way; expired ones are swept with it)."""

        def work(c: Connection) -> bool:
            taken = c.execute(
                sa.delete(L).where(L.c.token_hash == token_hash, L.c.expires_at > now)
            ).rowcount
            c.execute(sa.delete(L).where(L.c.expires_at <= now))
            return bool(taken)

        return await self._run(work)
