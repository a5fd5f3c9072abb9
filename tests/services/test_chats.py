"""Pausing a chat (issue 13.5): the one implementation behind the API's pause/resume and the
owner-takeover pause — stored first, then the pending reply cancelled; on a real SQLite
database, with the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.db.conftest import make_settings
from twin.clock import ManualClock
from twin.db import migrate
from twin.db.engine import database
from twin.domain.models import PAUSED_FOREVER
from twin.errors import NotFound
from twin.services.chats import ChatPauses, hold
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
async def repo(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    await migrate.upgrade(url)
    async with database(make_settings(url, tmp_path)) as db:
        yield db.repo


class Cancels:
    """What the pipeline was asked to cancel, and the pause stored when it was asked."""

    def __init__(self, repo) -> None:
        self.repo = repo
        self.calls: list[tuple[int, int, str, datetime | None]] = []

    async def __call__(self, account_id: int, chat_id: int, reason: str) -> int:
        paused = (await self.repo.get_chat(chat_id)).paused_until
        self.calls.append((account_id, chat_id, reason, paused))
        return 1


async def test_pause_stores_the_pause_before_cancelling_and_resume_cancels_nothing(repo):
    account = await repo.get_or_create_account("default")
    chat, _ = await repo.upsert_chat(account.id, 77, kind="private", title="Alice")
    events, cancel = EventLog(repo), Cancels(repo)
    pauses = ChatPauses(repo, AccountDirectory(repo), events, ManualClock(NOW), cancel)

    paused = await pauses.pause("default", 77, 30)
    until = NOW + timedelta(minutes=30)
    assert (paused.until, paused.cancelled, paused.chat.paused_until) == (until, 1, until)
    assert cancel.calls == [(account.id, chat.id, "paused", until)]  # stored first

    forever = await pauses.pause("default", 77, None)  # again: replaces the end
    assert forever.chat.paused_until == PAUSED_FOREVER
    resumed = await pauses.resume("default", 77)
    assert resumed.paused_until is None and len(cancel.calls) == 2
    types = [e.type for e in await repo.events_since(0)]
    assert types == ["chat.paused", "chat.paused", "chat.resumed"]

    with pytest.raises(NotFound, match="chat 78 is unknown to account 'default'"):
        await pauses.pause("default", 78, 5)


async def test_the_takeover_pause_is_the_same_hold(repo):
    account = await repo.get_or_create_account("default")
    chat, _ = await repo.upsert_chat(account.id, 5, kind="private", title="Bob")
    cancel = Cancels(repo)
    until = NOW + timedelta(minutes=15)
    assert await hold(repo, cancel, account.id, chat.id, until) == 1
    assert cancel.calls == [(account.id, chat.id, "paused", until)]
