"""Intake (found in review): an owner activity whose hand-over (pause the chat, cancel its reply)
failed for the database is held as a `_Takeover`; if the same update is delivered again (catch-
up, or the sweep's owner messages) while held, `_hold` replaces the `_Takeover` with the raw
activity, whose retry finds the message stored and stops: the takeover is lost. The owner's read
receipts and online status are held through an outage too (issue 17), the newest of each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from twin.domain.models import OwnerActivity, OwnerPresence, OwnerRead
from twin.errors import StorageUnavailable
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.intake import Intake


class Tx:
    def __init__(self, store: Store) -> None:
        self.store = store

    def upsert_chat(self, account_id: int, peer_id: int, **_: Any) -> tuple[Any, bool]:
        return SimpleNamespace(id=1, peer_id=peer_id), False

    def add_incoming(self, account_id: int, chat_id: int, tg_id: int, **_: Any):
        created = tg_id not in self.store.messages
        self.store.messages.add(tg_id)
        return SimpleNamespace(id=tg_id), created

    def update_chat(self, chat_id: int, **_: Any) -> Any:
        return SimpleNamespace(id=chat_id)

    def note_owner_activity(self, account_id: int, active_at: datetime) -> Any:
        return SimpleNamespace(account_id=account_id, active_at=active_at, online_until=None)

    def append_event(self, *args: Any, **kwargs: Any) -> int:
        self.store.event_id += 1
        return self.store.event_id


class Store:
    def __init__(self) -> None:
        self.messages: set[int] = set()
        self.event_id = 0

    async def transaction(self, work: Any) -> Any:
        return work(Tx(self))

    async def get_or_create_account(self, name: str) -> Any:
        return SimpleNamespace(id=1, name=name)

    async def get_account(self, name: str) -> Any:
        return SimpleNamespace(id=1, name=name)

    async def list_accounts(self) -> list[Any]:
        return [SimpleNamespace(id=1, name="default")]

    async def last_event_id(self) -> int:
        return 0


async def test_a_redelivered_owner_activity_does_not_lose_the_pending_takeover() -> None:
    store = Store()
    intake = Intake(store, EventLog(store), AccountDirectory(store))  # type: ignore[arg-type]
    handed_over: list[int] = []
    database_up = asyncio.Event()

    async def on_owner_activity(activity: OwnerActivity, chat: Any) -> None:
        if not database_up.is_set():
            raise StorageUnavailable("the database is unavailable (OSError)")
        handed_over.append(activity.message_id)

    intake.on_owner_activity = on_owner_activity
    activity = OwnerActivity(
        account="default", chat_id=42, message_id=7, date=datetime.now(UTC)
    )
    await intake.owner_activity(activity)  # stored; the hand-over failed: held as a takeover
    assert intake.held == 1
    await intake.owner_activity(activity)  # the same update again (catch-up / sweep)
    database_up.set()
    intake._arrived.set()  # as an arrival would: retry now
    assert intake._retry is not None
    await asyncio.wait_for(intake._retry, 5)  # ends once nothing is held
    assert intake.held == 0
    assert handed_over == [7]  # the chat is paused and its reply cancelled


async def test_the_owners_reads_and_status_wait_out_an_outage_the_newest_of_each() -> None:
    store = Store()
    intake = Intake(store, EventLog(store), AccountDirectory(store))  # type: ignore[arg-type]
    seen: list[object] = []
    database_up = asyncio.Event()

    async def handed(signal: object) -> None:
        if not database_up.is_set():
            raise StorageUnavailable("the database is unavailable (OSError)")
        seen.append(signal)

    intake.on_owner_read = handed
    intake.on_owner_presence = handed
    now = datetime.now(UTC)

    def read(max_id: int, chat: int = 42) -> OwnerRead:
        return OwnerRead(account="default", chat_id=chat, max_id=max_id, date=now)

    await intake.owner_read(read(5))
    await intake.owner_read(read(9))
    await intake.owner_read(read(7))  # late and older: the read up to 9 stays
    await intake.owner_read(read(3, chat=43))
    await intake.owner_presence(OwnerPresence(account="default", online=True, at=now))
    offline = OwnerPresence(account="default", online=False, at=now)
    await intake.owner_presence(offline)
    assert intake.held == 3  # one read per chat, one status
    database_up.set()
    intake._arrived.set()
    assert intake._retry is not None
    await asyncio.wait_for(intake._retry, 5)
    assert intake.held == 0
    assert seen == [read(9), read(3, chat=43), offline]
