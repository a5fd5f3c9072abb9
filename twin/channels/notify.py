"""Telling the owner that a conversation of a channel answered in its request (HTTP chat,
TalkMe) needs them, as the Telegram pipeline does: a note in the Saved Messages of a Telegram
account answering as the same twin (or the channel's `notify` account).

The note's random_id is stored on the job in the escalation's own transaction, before it is
sent, so sending it again (a retry) cannot post it twice: Telegram answers RANDOM_ID_DUPLICATE.
It is sent after the response, in the background: a slow or unreachable Telegram never delays
the channel's answer, and a failure is a WARNING, never the request's error.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from twin.ports import Accounts, Store
from twin.services.owner import owner_account

__all__ = ["EscalationNote", "OwnerNotifier", "escalation_note"]

log = logging.getLogger("twin.channels")

EXCERPT_CHARS = 300


@dataclass(frozen=True, slots=True)
class EscalationNote:
    twin_id: int | None  # the twin answering on the channel: its Telegram accounts are told
    default: bool  # the twin is `default` (accounts with no twin set answer as it too)
    text: str
    random_id: int
    reply_id: int
    account: str = ""  # [channels.<name>] notify: this account, whatever its twin


def escalation_note(
    channel: str,
    instance: str,
    thread: str,
    peer: int,
    who: str | None,
    intent: str | None,
    last: str,
) -> str:
    excerpt = last[:EXCERPT_CHARS].replace("http://", "").replace("https://", "")
    return (
        f"twin needs you in the {channel} conversation {thread}"
        f"{f' ({who})' if who else ''}.\n"
        f"Topic: {intent or 'unknown'}.\n"
        f"Last message: \u00ab{excerpt}\u00bb\n"
        f"It is paused until resumed: POST /chats/{peer}/resume "
        f'{{"account": "{instance}"}}'
    )


class OwnerNotifier:
    def __init__(self, repo: Store, accounts: Accounts | None) -> None:
        self._repo = repo
        self._accounts = accounts
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, note: EscalationNote) -> None:
        """Send `note` in the background (see the module's docstring)."""
        task = asyncio.get_running_loop().create_task(self._send(note))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the notes being sent (shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, note: EscalationNote) -> None:
        try:
            account = await owner_account(
                self._repo, self._accounts, note.twin_id, default=note.default, named=note.account
            )
            if account is not None:
                await account.send_text("me", note.text, random_id=note.random_id)
                log.info(
                    "reply %s: the owner was told in %s's Saved Messages", note.reply_id,
                    account.name,
                )
                return
            log.warning(
                "reply %s: the conversation needs the owner, but no logged-in Telegram account "
                "answers as its twin to tell them (set [channels.<name>] notify)",
                note.reply_id,
            )
        except Exception as exc:  # Telegram or the database: the escalation itself stands
            log.warning("reply %s: could not tell the owner: %s", note.reply_id, exc)
