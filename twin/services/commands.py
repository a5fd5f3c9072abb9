"""Owner commands (issue 17 §2): the owner types `.twin off`, `.twin pause 2h`… in any chat from
their phone; the twin applies it, deletes the message for both sides and acknowledges it in the
owner's Saved Messages. The parser and the acknowledgement's random id are pure
(twin.domain.commands); this is the use case.

What each command does:

- `on` / `off` / `draft`: the account's mode (twin.services.safety, set by the owner, reason
  "owner command in chat ***1234" or "in Saved Messages"); `on` also ends a mode the safety
  governor set. Setting the mode it already has changes nothing (no event): replaying the
  command is harmless.
- `pause [duration]` / `resume`: the chat the command was typed in (twin.services.chats, the
  owner's own pause: it cancels the chat's pending replies; a takeover never shortens it). The
  pause counts from the command's own date, so a command delivered again sets the same end.
  In Saved Messages they have no chat to act on: the acknowledgement says so (the account-wide
  switch is `off` / `on`; a timed account-wide pause is not supported).
- `status`, `help`, anything not understood: nothing changes; the acknowledgement tells the
  mode (and the chat's pause) or the usage.

A command is never a conversation message and never owner activity: it is not stored as a
message, starts no takeover and cancels nothing by itself (only `pause` does, as a pause).

Order, each effect persisted before its side effect: the change (and its own event:
`account.mode`, `chat.paused`, `chat.resumed`) is committed, then the message is deleted for
everyone (revoke), then the acknowledgement is sent, then `owner.command` records what was done.
A failure to delete or to acknowledge is logged and recorded in the event; the change stands.
A change the database could not store is not applied, and the acknowledgement says so. The
acknowledgement's random id is derived from the command's message, so a command delivered twice
(catch-up after a crash) is acknowledged once (Telegram refuses the duplicate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from twin.config import Settings
from twin.db.records import ChatRecord
from twin.domain.commands import (
    Command,
    OwnerText,
    Verb,
    ack_random_id,
    duration_text,
    parse,
    usage,
)
from twin.domain.models import PAUSED_FOREVER
from twin.domain.safety import AccountMode
from twin.errors import NotFound, StorageUnavailable, TwinError
from twin.logs import mask_chat
from twin.ports import Accounts, Clock, Store
from twin.services.chats import ChatPauses
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.pipeline.caches import Behaviours
from twin.services.policy import Behaviour
from twin.services.safety import OWNER, Safety

log = logging.getLogger("twin.commands")

MODES = {Verb.ON: AccountMode.ACTIVE, Verb.OFF: AccountMode.OFF, Verb.DRAFT: AccountMode.DRAFT}
_MODE_WORDS = {
    AccountMode.ACTIVE: "on",
    AccountMode.OFF: "off",
    AccountMode.DRAFT: "in draft mode",
}


@dataclass
class Outcome:
    """What a command did: `result` (a word for the event), the acknowledgement's text."""

    result: str
    ack: str
    applied: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class OwnerCommands:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Store,
        directory: AccountDirectory,
        events: EventLog,
        clock: Clock,
        safety: Safety,
        chats: ChatPauses,
        accounts: Accounts,
        behaviours: Behaviours,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._directory = directory
        self._events = events
        self._clock = clock
        self._safety = safety
        self._chats = chats
        self._accounts = accounts
        self._behaviours = behaviours
        self._locks: dict[str, asyncio.Lock] = {}
        # the owner's answer to a draft's note in Saved Messages (twin.services.drafts)
        self.on_saved_reply: Callable[[OwnerText], Awaitable[bool]] | None = None

    async def on_owner_text(self, text: OwnerText) -> bool:
        """The owner's message from another device: True when it was a command (handled here,
        so not owner activity); False for anything else. In Saved Messages, an answer to a
        draft's note (+, - or the text to send) is the owner's decision on that draft."""
        behaviour = await self._behaviour(text.account)
        prefix = behaviour.twin.command_prefix if behaviour else self._prefix_default()
        command = parse(text.text, prefix)
        if command is None:
            answered = self.on_saved_reply  # a command is never the text sent for a draft
            if text.saved and text.reply_to is not None and answered:
                return await answered(text)
            return False  # an ordinary message never waits behind a command
        # One command at a time per account, in the order they arrive (`off` then `on`).
        async with self._locks.setdefault(text.account, asyncio.Lock()):
            try:
                await self._handle(text, command, prefix, behaviour)
            except Exception:  # never let a command become the owner's message
                log.exception(
                    "account %s: owner command %s in chat %s failed",
                    text.account,
                    text.message_id,
                    mask_chat(text.chat_id),
                )
            return True

    def _prefix_default(self) -> str:
        return self._settings.twin.command_prefix

    async def _behaviour(self, account: str) -> Behaviour | None:
        """The account's behaviour (config + its overrides); None when it cannot be read
        (the database is out): config.toml's prefix is used then."""
        try:
            account_id = await self._directory.id_of(account)
            overrides = await self._repo.behaviour_overrides(account_id)
            return self._behaviours.get(account_id, overrides, None)[0]
        except (StorageUnavailable, NotFound, OSError) as exc:
            log.warning("account %s: its settings cannot be read (%s)", account, exc)
            return None

    async def _handle(
        self, text: OwnerText, command: Command, prefix: str, behaviour: Behaviour | None
    ) -> None:
        account_id: int | None = None
        chat: ChatRecord | None = None
        try:
            account_id = await self._directory.id_of(text.account)
            chat = None if text.saved else await self._chat(account_id, text.chat_id)
            zone = _zone(behaviour)
            outcome = await self._apply(text, command, prefix, account_id, chat, zone)
        except (StorageUnavailable, OSError) as exc:
            log.error("account %s: owner command not applied: %s", text.account, exc)
            outcome = Outcome(
                "not_applied",
                f"twin: `{command.typed}` was not applied — the database is unreachable. "
                "Type it again in a moment.",
            )
        deleted = await self._delete(text)
        acknowledged = await self._acknowledge(text, outcome.ack)
        data = {
            "chat": text.chat_id,
            "message_id": text.message_id,
            "command": command.verb.value,
            "result": outcome.result,
            "applied": outcome.applied,
            "deleted": deleted,
            "acknowledged": acknowledged,
            **outcome.data,
        }
        try:
            await self._events.emit(
                "owner.command",
                data,
                account_id=account_id,
                chat_id=chat.id if chat is not None else None,
            )
        except (StorageUnavailable, OSError) as exc:
            log.warning("account %s: owner.command event not stored: %s", text.account, exc)

    async def _chat(self, account_id: int, peer_id: int) -> ChatRecord | None:
        try:
            return await self._repo.get_chat_by_peer(account_id, peer_id)
        except NotFound:
            return None

    # -- what each command does ------------------------------------------------------------------

    async def _apply(
        self,
        text: OwnerText,
        command: Command,
        prefix: str,
        account_id: int,
        chat: ChatRecord | None,
        zone: ZoneInfo,
    ) -> Outcome:
        verb = command.verb
        if verb in MODES:
            return await self._set_mode(text, MODES[verb], prefix, account_id)
        if verb in (Verb.PAUSE, Verb.RESUME) and text.saved:
            return Outcome(
                "not_a_chat",
                f"twin: `{command.typed}` works in a chat: type it in the chat to pause or "
                f"resume there. For the whole account: `{prefix} off` and `{prefix} on`.",
            )
        if verb is Verb.PAUSE:
            return await self._pause(text, command, prefix, account_id, chat, zone)
        if verb is Verb.RESUME:
            return await self._resume(text, prefix, chat)
        if verb is Verb.STATUS:
            return Outcome("status", self._status(text, account_id, chat, zone))
        problem = f"`{command.typed}`: {command.problem}. " if command.problem else ""
        return Outcome("usage", f"twin: {problem}{usage(prefix)}")

    async def _set_mode(
        self, text: OwnerText, mode: AccountMode, prefix: str, account_id: int
    ) -> Outcome:
        name = text.account
        data = {"mode": mode.value}
        if self._safety.mode_of(account_id) is mode:
            return Outcome(
                "unchanged", f"twin: already {_MODE_WORDS[mode]} on '{name}'.", data=data
            )
        where = "Saved Messages" if text.saved else f"chat {mask_chat(text.chat_id)}"
        await self._safety.set_mode(name, mode, reason=f"owner command in {where}", set_by=OWNER)
        ack = {
            AccountMode.OFF: f"twin: off on '{name}' — no replies; say `{prefix} on` to turn it "
            "back on.",
            AccountMode.DRAFT: f"twin: draft mode on '{name}' — replies are written for you "
            f"(GET /messages), none is sent; say `{prefix} on` to send again.",
            AccountMode.ACTIVE: f"twin: on on '{name}' — answering again.",
        }[mode]
        return Outcome("mode", ack, applied=True, data=data)

    async def _pause(
        self,
        text: OwnerText,
        command: Command,
        prefix: str,
        account_id: int,
        chat: ChatRecord | None,
        zone: ZoneInfo,
    ) -> Outcome:
        now = self._clock.now()
        # Counted from the command itself: delivered again, it sets the same end.
        until = (
            PAUSED_FOREVER
            if command.minutes is None
            else text.date + timedelta(minutes=command.minutes)
        )
        label = _label(chat, text.chat_id)
        if until <= now:
            return Outcome("expired", f"twin: `{command.typed}` in {label} is over already.")
        if chat is None:  # a chat the twin never saw: it is known from now on
            await self._repo.upsert_chat(account_id, text.chat_id)
        minutes = None if command.minutes is None else (until - now).total_seconds() / 60
        paused = await self._chats.pause(text.account, text.chat_id, minutes, until=until)
        cancelled = f" ({paused.cancelled} pending reply cancelled)" if paused.cancelled else ""
        if command.minutes is None:
            how_long = "until you resume"
        else:
            how_long = f"for {duration_text(command.minutes)} (until {_when(until, zone)})"
        ack = (
            f"twin: paused in {label} {how_long}{cancelled}; say `{prefix} resume` there to resume."
        )
        data = {"minutes": command.minutes, "until": None if minutes is None else until.isoformat()}
        return Outcome("paused", ack, applied=True, data=data)

    async def _resume(self, text: OwnerText, prefix: str, chat: ChatRecord | None) -> Outcome:
        label = _label(chat, text.chat_id)
        if chat is None or not chat.is_paused(self._clock.now()):
            return Outcome("unchanged", f"twin: {label} is not paused.")
        await self._chats.resume(text.account, text.chat_id)
        return Outcome("resumed", f"twin: resumed in {label}.", applied=True)

    def _status(
        self, text: OwnerText, account_id: int, chat: ChatRecord | None, zone: ZoneInfo
    ) -> str:
        record = self._safety.mode(account_id)
        mode = record.mode if record is not None else AccountMode.ACTIVE
        line = f"twin: {_MODE_WORDS[mode]} on '{text.account}'"
        if record is not None and record.reason:
            line += f" (set by {record.set_by}: {record.reason})"
        line += "."
        if chat is not None and chat.is_paused(self._clock.now()):
            until = chat.paused_until
            end = (
                "until resumed"
                if until is None or until >= PAUSED_FOREVER
                else (f"until {_when(until, zone)}")
            )
            line += f" Paused in {_label(chat, text.chat_id)} {end}."
        return line

    # -- the side effects ------------------------------------------------------------------------

    async def _delete(self, text: OwnerText) -> bool:
        """Delete the command for both sides; a failure is logged (the command stands)."""
        try:
            account = await self._accounts.get(text.account, connect=False)
            await account.delete_messages(text.chat_id, [text.message_id])
        except (TwinError, OSError) as exc:
            log.warning(
                "account %s: owner command %s in chat %s not deleted: %s",
                text.account,
                text.message_id,
                mask_chat(text.chat_id),
                exc,
            )
            return False
        return True

    async def _acknowledge(self, text: OwnerText, ack: str) -> bool:
        """The acknowledgement in Saved Messages, once per command (its random id is the
        command's); a failure is logged."""
        random_id = ack_random_id(text.account, text.chat_id, text.message_id)
        try:
            account = await self._accounts.get(text.account, connect=False)
            sent = await account.send_text("me", ack, random_id=random_id)
        except (TwinError, OSError) as exc:
            log.warning(
                "account %s: owner command %s not acknowledged: %s",
                text.account,
                text.message_id,
                exc,
            )
            return False
        if sent.duplicate:
            log.info(
                "account %s: owner command %s was acknowledged before",
                text.account,
                text.message_id,
            )
        return True


def _label(chat: ChatRecord | None, peer_id: int) -> str:
    """How the acknowledgement (in the owner's own Saved Messages) names the chat."""
    if chat is not None and chat.title:
        return f"the chat with {chat.title}"
    return f"chat {peer_id}"


def _zone(behaviour: Behaviour | None) -> ZoneInfo:
    name = behaviour.schedule.timezone if behaviour is not None else "UTC"
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def _when(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone.key)
