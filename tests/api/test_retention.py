"""`[storage] retention_days` on SQLite and PostgreSQL: the texts older than the retention go
(messages' texts and transcripts, reply jobs' and decided drafts' texts), the rows stay, and
GET /stats answers exactly as before; a dry run counts the same and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.api.conftest import AUTH
from tests.api.test_stats import client, seed  # noqa: F401  (client is a fixture)
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys
from twin.clock import ManualClock
from twin.db.tables import Message, Reply
from twin.services.retention import Retention

M = Message.__table__
R = Reply.__table__


async def texts(db) -> tuple[list[datetime], int]:
    """The dates of the messages that still have a text, and the reply texts left."""
    async with db.engine.connect() as connection:
        dates = (await connection.execute(sa.select(M.c.date).where(M.c.text.is_not(None)))).all()
        replies = (
            await connection.execute(
                sa.select(sa.func.count()).select_from(R).where(R.c.text.is_not(None))
            )
        ).scalar_one()
    return sorted(row.date for row in dates), int(replies)


async def stats(client, account: str) -> dict:  # noqa: F811
    response = await client.get(f"/stats?days=40&to=2025-05-20&account={account}", headers=AUTH)
    assert response.status == 200
    return await response.json()


@pytest.mark.parametrize("dry_run", [True, False])
async def test_old_texts_go_and_the_statistics_stay(
    client,  # noqa: F811  (the fixture)
    dry_run,
    monkeypatch,
) -> None:
    import twin.db.repo.retention as retention_rows

    monkeypatch.setattr(retention_rows, "PURGE_BATCH", 2)  # several batches, as on a big history
    app = client.app
    await seed(app)
    db = app[keys.DATABASE]
    repo = db.repo
    async with db.engine.begin() as connection:  # the twin's texts of two sent replies
        await connection.execute(sa.update(R).values(text="the twin wrote this"))
    before = {account: await stats(client, account) for account in ("default", "other")}
    dates, replies = await texts(db)
    cutoff = datetime(2025, 5, 4, 12, tzinfo=UTC)
    assert any(d < cutoff for d in dates) and any(d >= cutoff for d in dates)

    retention = Retention(repo, ManualClock(datetime(2025, 5, 24, 12, tzinfo=UTC)), days=20)
    purged = await retention.purge(dry_run=dry_run)
    assert purged.messages == len([d for d in dates if d < cutoff])
    assert purged.replies > 0 and purged.drafts == 0

    after_dates, after_replies = await texts(db)
    if dry_run:
        assert (after_dates, after_replies) == (dates, replies)
    else:
        assert after_dates == [d for d in dates if d >= cutoff]
        assert after_replies == replies - purged.replies
        assert (await retention.purge()).total == 0  # nothing left to remove
    for account in ("default", "other"):
        assert await stats(client, account) == before[account]
