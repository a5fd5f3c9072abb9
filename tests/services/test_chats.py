"""Pausing a chat (issue 13.5): the one implementation behind the API's pause/resume and the
owner-takeover pause — the pause and the cancellation of the chat's unfinished replies in one
transaction, the running jobs interrupted before it commits; on a real SQLite database, with
the injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.db.conftest import make_settings
from twin.clock import ManualClock
from twin.db import migrate
from twin.db.engine import database
from twin.domain.models import PAUSED_FOREVER, ReplyState
from twin.errors import NotFound
from twin.services.chats import ChatHold, ChatPauses
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
async def repo(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    await migrate.upgrade(url)
    async with database(make_settings(url, tmp_path)) as db:
        yield db.repo


class Runs:
    """The pipeline's jobs in flight, as the hold sees them: what it interrupted, and the
    reply's state when it did (before the commit)."""

    def __init__(self, repo) -> None:
        self.repo = repo
        self.interrupted: list[int] = []
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    def interrupt(self, chat_id: int) -> None:
        self.interrupted.append(chat_id)

    def lock(self, account_id: int, peer_id: int) -> asyncio.Lock:
        return self._locks.setdefault((account_id, peer_id), asyncio.Lock())


async def _scheduled(repo, account_id: int, chat_id: int):
    return await repo.create_reply(account_id, chat_id, reply_at=NOW)


async def test_pause_and_its_cancellations_are_one_transaction_and_resume_cancels_nothing(repo):
    account = await repo.get_or_create_account("default")
    chat, _ = await repo.upsert_chat(account.id, 77, kind="private", title="Alice")
    reply = await _scheduled(repo, account.id, chat.id)
    events, runs = EventLog(repo), Runs(repo)
    pauses = ChatPauses(
        repo, AccountDirectory(repo), events, ManualClock(NOW), ChatHold(repo, events, runs)
    )

    paused = await pauses.pause("default", 77, 30)
    until = NOW + timedelta(minutes=30)
    assert (paused.until, paused.cancelled, paused.chat.paused_until) == (until, 1, until)
    assert runs.interrupted == [chat.id]
    assert (await repo.get_reply(reply.id)).state is ReplyState.CANCELLED

    forever = await pauses.pause("default", 77, None)  # again: replaces the end
    assert forever.chat.paused_until == PAUSED_FOREVER and forever.cancelled == 0
    resumed = await pauses.resume("default", 77)
    assert resumed.paused_until is None and runs.interrupted == [chat.id]
    stored = await repo.events_since(0)
    assert [e.type for e in stored] == [
        "reply.cancelled",
        "chat.paused",
        "chat.paused",
        "chat.resumed",
    ]
    assert [e.data.get("cancelled") for e in stored if e.type == "chat.paused"] == [1, 0]

    with pytest.raises(NotFound, match="chat 78 is unknown to account 'default'"):
        await pauses.pause("default", 78, 5)


async def test_the_takeover_pause_is_the_same_hold(repo):
    account = await repo.get_or_create_account("default")
    chat, _ = await repo.upsert_chat(account.id, 5, kind="private", title="Bob")
    reply = await _scheduled(repo, account.id, chat.id)
    events = EventLog(repo)
    until = NOW + timedelta(minutes=15)
    held = await ChatHold(repo, events, Runs(repo)).hold(chat, until)
    assert (held.cancelled, held.chat.paused_until) == (1, until)
    assert (await repo.get_reply(reply.id)).reason == "paused"


async def test_two_owner_messages_handled_at_once_never_shorten_the_takeover(repo):
    """Both computed their window from the same chat record: the earlier message's window,
    written last, must not end the pause before the later one's, nor restart the cap."""
    account = await repo.get_or_create_account("default")
    stale, _ = await repo.upsert_chat(account.id, 9, kind="private", title="Dan")
    hold = ChatHold(repo, EventLog(repo), Runs(repo)).hold
    first, second = NOW, NOW + timedelta(minutes=2)
    await hold(stale, second + timedelta(minutes=30), takeover_since=first)
    late = await hold(stale, first + timedelta(minutes=30), takeover_since=second)
    assert late.chat.paused_until == second + timedelta(minutes=30)
    assert late.chat.takeover_started_at == first
    # A takeover over long ago is not the same one: a new one starts from its own message.
    later = NOW + timedelta(hours=5)
    fresh = await hold(stale, later + timedelta(minutes=30), takeover_since=later)
    assert fresh.chat.takeover_started_at == later


async def test_a_failed_hold_neither_pauses_nor_cancels(repo):
    """One transaction: when it fails, the chat is not paused and its reply still pending."""
    account = await repo.get_or_create_account("default")
    chat, _ = await repo.upsert_chat(account.id, 6, kind="private", title="Carol")
    reply = await _scheduled(repo, account.id, chat.id)
    events = EventLog(repo)

    def failing(tx, cancelled):
        assert cancelled == 1
        raise RuntimeError("the event cannot be stored")

    with pytest.raises(RuntimeError):
        await ChatHold(repo, events, Runs(repo)).hold(chat, PAUSED_FOREVER, event=failing)
    assert (await repo.get_chat(chat.id)).paused_until is None
    assert (await repo.get_reply(reply.id)).state is ReplyState.SCHEDULED
