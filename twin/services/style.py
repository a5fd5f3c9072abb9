"""Learning the owner's style from their own messages: resumable, persisted batch by batch.

The accumulator's state (counters, candidate examples) and a cursor (chats done, position in
the current chat) are stored after every batch, so an interrupted `twin style build` continues
where it stopped instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twin.domain.conversation import StyleProfile
from twin.domain.style import OwnerMessage, StyleAccumulator

BATCH = 100
Progress = Callable[[int, int, int], None]  # messages read, chats done, chats in total


def accumulator_of(record: Any) -> StyleAccumulator | None:
    """The accumulator in a stored style record; None if absent or unreadable (old format)."""
    if record is None or not record.data:
        return None
    try:
        return StyleAccumulator.from_dict(record.data)
    except (KeyError, TypeError, ValueError):
        return None


async def load_accumulator(repo: Any, account_id: int) -> StyleAccumulator | None:
    return accumulator_of(await repo.get_style_profile(account_id))


async def stored_profile(repo: Any, account_id: int) -> StyleProfile | None:
    accumulator = await load_accumulator(repo, account_id)
    return accumulator.profile() if accumulator is not None else None


async def build_style(
    account: Any,
    repo: Any,
    account_id: int,
    *,
    limit: int,
    restart: bool = False,
    progress: Progress | None = None,
) -> StyleProfile:
    """Read up to `limit` of the owner's messages (resuming unless `restart`) and store the
    profile's state; returns the profile."""
    accumulator = None if restart else await load_accumulator(repo, account_id)
    if accumulator is None:
        accumulator = StyleAccumulator()
    cursor: dict[str, Any] = accumulator.cursor or {"done": [], "chat": None, "before": 0}
    chats = await account.private_chat_ids()
    for chat_id in chats:
        if accumulator.count >= limit:
            break
        if chat_id in cursor["done"]:
            continue
        before = cursor["before"] if cursor["chat"] == chat_id else 0
        while accumulator.count < limit:
            own, next_before = await account.own_messages(chat_id, before_id=before, limit=BATCH)
            room = limit - accumulator.count
            texts = [(message_id, text, at) for message_id, text, at in own if text][:room]
            accumulator.add(
                OwnerMessage(text=text, chat_id=chat_id, at=at) for _, text, at in texts
            )
            if len(texts) == room and texts:
                before = texts[-1][0]  # the limit fell inside this page: resume right after it
            elif next_before is not None:
                before = next_before
            cursor.update(chat=chat_id, before=before)
            await _save(repo, account_id, accumulator, cursor)
            if progress is not None:
                progress(accumulator.count, len(cursor["done"]), len(chats))
            if next_before is None and accumulator.count < limit:
                break  # history exhausted
        else:
            break  # the limit was reached inside this chat: resume here next time
        cursor["done"].append(chat_id)
        cursor.update(chat=None, before=0)
        await _save(repo, account_id, accumulator, cursor)
        if progress is not None:
            progress(accumulator.count, len(cursor["done"]), len(chats))
    return accumulator.profile()


async def _save(repo: Any, account_id: int, accumulator: StyleAccumulator, cursor: dict) -> None:
    accumulator.cursor = dict(cursor)
    await repo.put_style_profile(account_id, accumulator.to_dict(), cursor=dict(cursor))
