"""`[storage] retention_days`: what people wrote is removed once it is that old, every hour
while the daemon runs (and on demand: `twin purge`), the statistics untouched
(twin.db.repo.retention says what goes and what stays)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from twin.background import Periodic, Turn, always
from twin.ports import Clock

log = logging.getLogger("twin.retention")

INTERVAL_SECONDS = 3600.0


class Retention:
    def __init__(self, repo: Any, clock: Clock, days: float) -> None:
        self._repo = repo
        self._clock = clock
        self.days = days
        self._periodic = Periodic("retention", self._pass, INTERVAL_SECONDS, log)
        # Several processes on one database: one of them purges (lifecycle_cluster).
        self.turn: Turn = always

    async def purge(self, *, dry_run: bool = False) -> Any:
        """Remove (or, with `dry_run`, count) the texts older than `days` days."""
        before = self._clock.now() - timedelta(days=self.days)
        return await self._repo.purge_texts(before, dry_run=dry_run)

    def start(self) -> None:
        if self.days > 0:
            self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _pass(self) -> None:
        if not await self.turn():
            return
        purged = await self.purge()
        if purged.total:
            log.info(
                "retention: removed the texts of %d messages, %d replies and %d drafts "
                "older than %g days",
                purged.messages,
                purged.replies,
                purged.drafts,
                self.days,
            )
