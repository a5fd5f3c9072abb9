"""The API's rate-limit windows in the database, for processes sharing it (twin.api.ratelimit).
Each counted request is one short transaction: the keys' rows, made if missing and locked (by
one upsert each, in one order; SQLite serialises writers), answer the moving window of
twin.domain.throttle, the same window the single-process limits keep in memory."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.repo._base import RepoBase
from twin.db.tables_cluster import RateWindow
from twin.domain.throttle import Quota, Verdict, window_hit

W = RateWindow.__table__


class RateWindowsMixin(RepoBase):
    async def rate_hits(
        self, hits: Sequence[tuple[str, str, Quota]], now: float
    ) -> list[Verdict]:
        """One hit at Unix time `now` in each (limit name, key, quota) of `hits`, in one
        transaction: all counted, or none when any window is full. The verdicts are in the
        order of `hits`."""

        def work(c: Connection) -> list[Verdict]:
            rows: dict[tuple[str, str], list[float]] = {}
            for name, key, _ in sorted(hits, key=lambda hit: hit[:2]):  # one lock order
                rows[(name, key)] = self._rate_row(c, name, key, now)
            looks = [
                window_hit(quota, rows[(name, key)], now, count=False)[1]
                for name, key, quota in hits
            ]
            if not all(look.allowed for look in looks):
                return looks
            verdicts = []
            for name, key, quota in hits:
                kept, verdict = window_hit(quota, rows[(name, key)], now)
                where = (W.c.name == name) & (W.c.key == key)
                expires = kept[-1] + quota.window
                c.execute(sa.update(W).where(where).values(hits=kept, expires_at=expires))
                verdicts.append(verdict)
            return verdicts

        return await self._run(work)

    def _rate_row(self, c: Connection, name: str, key: str, now: float) -> list[float]:
        """The key's hit times, its row made if missing and locked until the transaction ends
        (one upsert: ON CONFLICT DO UPDATE locks the row on PostgreSQL; SQLite serialises
        writers)."""
        statement = (
            self._insert(c, W)
            .values(name=name, key=key, hits=[], expires_at=now)
            .on_conflict_do_update(
                index_elements=[W.c.name, W.c.key], set_={"expires_at": W.c.expires_at}
            )
            .returning(W.c.hits)
        )
        return [float(at) for at in c.execute(statement).scalar_one()]

    async def rate_reset(self, name: str, key: str) -> None:
        """Forget every hit of `key` in limit `name`."""
        statement = sa.delete(W).where((W.c.name == name) & (W.c.key == key))
        await self._run(lambda c: c.execute(statement))

    async def rate_sweep(self, now: float) -> int:
        """Drop the rows whose hits have all left their window by Unix time `now`."""
        statement = sa.delete(W).where(W.c.expires_at < now)
        return await self._run(lambda c: c.execute(statement).rowcount or 0)
