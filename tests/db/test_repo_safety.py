"""The safety governor's storage: the account's mode with its event, the ledger of rare events,
and the sends a restart seeds the daily budget with (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twin.db.repo import Repository
from twin.domain.models import ReplyState
from twin.domain.safety import AccountMode

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def test_a_mode_change_is_stored_with_its_event(repo: Repository, account) -> None:
    assert await repo.account_modes() == {}
    first = await repo.set_account_mode(
        account.id,
        AccountMode.DRAFT,
        reason="PEER_FLOOD",
        set_by="governor",
        at=T0,
        notify_random_id=42,
    )
    assert (first.mode, first.set_by, first.notified) == (AccountMode.DRAFT, "governor", False)
    await repo.mark_mode_notified(account.id, 41)  # another note's id: not this one
    await repo.mark_mode_notified(account.id, 42)
    second = await repo.set_account_mode(
        account.id, AccountMode.ACTIVE, reason="back", set_by="owner", at=T0 + timedelta(hours=1)
    )
    modes = await repo.account_modes()
    assert modes == {account.id: second}
    assert second.changed_at == T0 + timedelta(hours=1) and second.notify_random_id is None
    events = await repo.safety_events(account.id, T0)
    assert [(e.kind, e.category, e.detail) for e in events] == [
        ("mode", "draft", "governor: PEER_FLOOD"),
        ("mode", "active", "owner: back"),
    ]


async def test_events_since_a_time_oldest_first(repo: Repository, account) -> None:
    for minutes, kind in ((0, "flood_wait"), (10, "spam_limit"), (20, "first_contact")):
        await repo.add_safety_event(
            account.id,
            kind,
            at=T0 + timedelta(minutes=minutes),
            category="send",
            seconds=30.0,
            detail="x" * 600,
        )
    events = await repo.safety_events(account.id, T0 + timedelta(minutes=5))
    assert [e.kind for e in events] == ["spam_limit", "first_contact"]
    assert events[0].seconds == 30.0 and len(events[0].detail) == 500
    assert [e.kind for e in await repo.safety_events(account.id, T0, limit=1)] == ["first_contact"]


async def test_send_times_are_the_twins_bubbles(repo: Repository, account, chat) -> None:
    sent = await repo.add_outgoing(account.id, chat.id, text="a", random_id=1)
    await repo.mark_sent(sent.id, 501)
    await repo.add_outgoing(account.id, chat.id, text="b", random_id=2)  # still sending
    failed = await repo.add_outgoing(account.id, chat.id, text="c", random_id=3)
    await repo.update_message(failed.id, state=ReplyState.FAILED)
    times = await repo.send_times(account.id, datetime(2000, 1, 1, tzinfo=UTC))
    assert len(times) == 2 and all(t.tzinfo is not None for t in times)
    assert await repo.send_times(account.id, datetime(2999, 1, 1, tzinfo=UTC)) == []


async def test_twin_sent_ids_are_the_twins_replies_in_that_chat(
    repo: Repository, account, chat
) -> None:
    message, _ = await repo.add_incoming(account.id, chat.id, 7, date=T0)
    reply = await repo.create_reply(account.id, chat.id, reply_at=T0, message_ids=[message.id])
    bubbles = [
        await repo.add_outgoing(
            account.id, chat.id, text=text, reply_id=reply.id, bubble_index=i, random_id=20 + i
        )
        for i, text in enumerate(("one", "two"))
    ]
    await repo.mark_sent(bubbles[0].id, 701)  # the second is still on its way: no Telegram id
    manual = await repo.add_outgoing(account.id, chat.id, text="by the API", random_id=12)
    await repo.mark_sent(manual.id, 702)  # the owner's own send through the API
    other, _ = await repo.upsert_chat(account.id, 1002, kind="private", title="Bob")
    assert await repo.twin_sent_ids(account.id, chat.peer_id) == {701}
    assert await repo.twin_sent_ids(account.id, other.peer_id) == set()
