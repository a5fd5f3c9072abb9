"""Learning the owner's style from their own messages: resumable, persisted batch by batch.

The accumulator's state (counters, candidate examples) and a cursor (chats done, position in
the current chat) are stored after every batch, so an interrupted `twin style build` continues
where it stopped instead of starting over.

The same pages give the owner's reply timing (twin.domain.timing): every message of the page,
the contact's too, goes through a per-chat `ReplyScan` whose few fields ride in the cursor
(`replies`), so a resumed build measures the chat it stopped in as if uninterrupted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin.domain.conversation import StyleProfile
from twin.domain.style import OwnerMessage, StyleAccumulator
from twin.domain.timing import LearnedTiming, ReplyScan

if TYPE_CHECKING:
    from twin.db.records import StyleProfileRecord
    from twin.ports import Store

BATCH = 100


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """Where a build stands: history messages scanned of those in the chats to read (counted
    from Telegram before the scan), the owner's own messages found (the profile's size) and
    the limit on those, chats read of the chats to read."""

    scanned: int
    total: int
    own: int
    limit: int
    chats_done: int
    chats: int

    @property
    def complete(self) -> bool:
        """Every chat read, or the limit of own messages reached."""
        return self.own >= self.limit or self.chats_done >= self.chats


Progress = Callable[[ScanProgress], None]


def accumulator_of(record: StyleProfileRecord | None) -> StyleAccumulator | None:
    """The accumulator in a stored style record; None if absent or unreadable (old format)."""
    if record is None or not record.data:
        return None
    try:
        return StyleAccumulator.from_dict(record.data)
    except (KeyError, TypeError, ValueError):
        return None


async def load_accumulator(repo: Store, account_id: int) -> StyleAccumulator | None:
    return accumulator_of(await repo.get_style_profile(account_id))


async def stored_profile(repo: Store, account_id: int) -> StyleProfile | None:
    accumulator = await load_accumulator(repo, account_id)
    return accumulator.profile() if accumulator is not None else None


async def stored_style(repo: Store, account_id: int) -> tuple[StyleProfile, LearnedTiming] | None:
    """The stored profile and the reply timing learned with it; None before any build."""
    accumulator = await load_accumulator(repo, account_id)
    if accumulator is None:
        return None
    return accumulator.profile(), accumulator.timing.learned()


async def build_style(
    account: Any,
    repo: Store,
    account_id: int,
    *,
    limit: int,
    restart: bool = False,
    progress: Progress | None = None,
    timezone: str = "UTC",
) -> StyleProfile:
    """Read up to `limit` of the owner's messages (resuming unless `restart`) and store the
    profile's state; returns the profile. `progress` is told after every page. Reply times are
    filed by hour of the week in `timezone` (a resumed build keeps the zone it started with)."""
    accumulator = None if restart else await load_accumulator(repo, account_id)
    if accumulator is None:
        accumulator = StyleAccumulator()
    if accumulator.timing.empty:
        accumulator.timing.timezone = timezone
    cursor: dict[str, Any] = accumulator.cursor or {"done": [], "chat": None, "before": 0}
    chats = [c for c in await account.private_chat_ids() if c not in cursor["done"]]
    sizes = [await account.history_size(chat_id) for chat_id in chats]  # the real total
    scanned, done = 0, 0

    def report() -> None:
        if progress is not None:
            progress(ScanProgress(scanned, sum(sizes), accumulator.count, limit, done, len(chats)))

    report()
    for chat_id in chats:
        if accumulator.count >= limit:
            break
        twin_ids = await repo.twin_sent_ids(account_id, chat_id)  # the twin's own replies
        before = cursor["before"] if cursor["chat"] == chat_id else 0
        scan = ReplyScan.from_dict(cursor.get("replies") if cursor["chat"] == chat_id else None)
        while accumulator.count < limit:
            page = await account.own_messages(chat_id, before_id=before, limit=BATCH)
            scanned += page.scanned
            room = limit - accumulator.count
            texts = [
                (message_id, text, at)
                for message_id, text, at in page.own
                if text and message_id not in twin_ids
            ][:room]
            accumulator.add(
                OwnerMessage(text=text, chat_id=chat_id, at=at) for _, text, at in texts
            )
            cut = 0
            if len(texts) == room and texts:
                before = cut = texts[-1][0]  # the limit fell inside this page: resume after it
            elif page.next_before is not None:
                before = page.next_before
            # the timing reads exactly the messages a resumed build will not read again
            timeline = (
                dataclasses.replace(m, twin=True) if m.id in twin_ids else m
                for m in page.timeline
                if m.id >= cut
            )
            scan.feed(accumulator.timing, chat_id, timeline)
            exhausted = page.next_before is None and accumulator.count < limit
            if exhausted:
                scan.finish(accumulator.timing, chat_id)
            cursor.update(chat=chat_id, before=before, replies=scan.to_dict())
            await _save(repo, account_id, accumulator, cursor)
            report()
            if exhausted:
                break  # history exhausted
        else:
            break  # the limit was reached inside this chat: resume here next time
        cursor["done"].append(chat_id)
        cursor.update(chat=None, before=0, replies=None)
        done += 1
        await _save(repo, account_id, accumulator, cursor)
        report()
    return accumulator.profile()


async def _save(repo: Store, account_id: int, accumulator: StyleAccumulator, cursor: dict) -> None:
    accumulator.cursor = dict(cursor)
    await repo.put_style_profile(account_id, accumulator.to_dict(), cursor=dict(cursor))
