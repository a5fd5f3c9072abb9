"""Chats: upsert, lookups, pausing, field updates and listing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from twin.db.repo import Repository
from twin.errors import NotFound

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


async def test_upsert_chat_creates_then_refreshes(repo: Repository, account) -> None:
    chat, created = await repo.upsert_chat(account.id, 2**40, kind="private", title="Bob")
    assert created is True
    assert (chat.peer_id, chat.kind, chat.title, chat.is_contact) == (2**40, "private", "Bob",
                                                                      False)
    assert chat.overrides == {}

    again, created = await repo.upsert_chat(account.id, 2**40, title="Bobby", is_contact=True)
    assert created is False
    assert again.id == chat.id
    assert (again.title, again.is_contact, again.kind) == ("Bobby", True, "private")

    same, created = await repo.upsert_chat(account.id, 2**40)
    assert created is False and same == again


async def test_concurrent_upserts_create_one_chat(repo: Repository, account) -> None:
    results = await asyncio.gather(
        *(repo.upsert_chat(account.id, 77, title=f"t{i}") for i in range(8))
    )
    assert len({chat.id for chat, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await repo.count_chats(account.id) == 1


async def test_get_chat(repo: Repository, chat) -> None:
    assert await repo.get_chat(chat.id) == chat
    assert await repo.get_chat_by_peer(chat.account_id, chat.peer_id) == chat
    with pytest.raises(NotFound):
        await repo.get_chat(chat.id + 1000)
    with pytest.raises(NotFound):
        await repo.get_chat_by_peer(chat.account_id, 5)


async def test_pause_and_resume(repo: Repository, chat) -> None:
    until = datetime(2025, 1, 1, 15, 0, tzinfo=timezone(timedelta(hours=3)))
    paused = await repo.set_paused(chat.account_id, chat.peer_id, until)
    assert paused.paused_until == until
    assert paused.paused_until.tzinfo is UTC
    assert paused.is_paused(T0 - timedelta(minutes=1))
    assert not paused.is_paused(T0)
    resumed = await repo.set_paused(chat.account_id, chat.peer_id, None)
    assert resumed.paused_until is None
    with pytest.raises(NotFound):
        await repo.set_paused(chat.account_id, 404, None)


async def test_naive_datetimes_are_refused(repo: Repository, chat) -> None:
    with pytest.raises(Exception, match="naive"):
        await repo.set_paused(chat.account_id, chat.peer_id, datetime(2025, 1, 1))


async def test_update_chat_fields(repo: Repository, chat) -> None:
    updated = await repo.update_chat(
        chat.id,
        overrides={"twin": {"persona": "formal"}, "voice_replies": "never"},
        summary="They talked about the trip.",
        summary_upto_message_id=99,
        last_incoming_at=T0,
        last_owner_activity_at=T0,
        last_away_at=T0,
    )
    assert updated.overrides == {"twin": {"persona": "formal"}, "voice_replies": "never"}
    assert (updated.summary, updated.summary_upto_message_id) == ("They talked about the trip.",
                                                                  99)
    assert updated.last_incoming_at == T0
    assert await repo.get_chat(chat.id) == updated
    with pytest.raises(TypeError):
        await repo.update_chat(chat.id, peer_id=5)
    with pytest.raises(NotFound):
        await repo.update_chat(chat.id + 1000, title="x")


async def test_list_chats_by_latest_activity(repo: Repository, account) -> None:
    ids = {}
    for peer, incoming, outgoing in (
        (1, T0, None),
        (2, T0 - timedelta(hours=2), T0 + timedelta(hours=1)),
        (3, None, None),
        (4, T0 + timedelta(minutes=30), T0 - timedelta(days=1)),
    ):
        chat, _ = await repo.upsert_chat(account.id, peer)
        await repo.update_chat(chat.id, last_incoming_at=incoming, last_outgoing_at=outgoing)
        ids[peer] = chat.id
    other = await repo.get_or_create_account("other")
    await repo.upsert_chat(other.id, 1)

    listed = [c.peer_id for c in await repo.list_chats(account.id, limit=10)]
    # peer 3 has no activity: it sorts by created_at (now), i.e. first.
    assert listed == [3, 2, 4, 1]
    assert [c.peer_id for c in await repo.list_chats(account.id, limit=2, offset=1)] == [2, 4]
    assert await repo.count_chats(account.id) == 4
