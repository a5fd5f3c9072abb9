"""Updates in: the event handlers, the intake of one received message, and the sweep that takes in
what never arrived as an update.

A mixin of TelegramAccount (account.py) built on AccountBase (base.py), as Telethon's
`client/updates.py` is of its client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from telethon import errors, events, utils
from telethon.tl import types

from twin.adapters.telegram import mapping
from twin.adapters.telegram.base import AccountBase
from twin.adapters.telegram.refusals import rpc_errors
from twin.domain.models import ChatKind
from twin.errors import AdapterError

log = logging.getLogger("twin.telegram")

# Telegram's service notifications (login codes, security alerts): never a conversation.
SERVICE_USER_ID = 777000
_SWEEP_DIALOGS = 100
_SWEEP_MESSAGES_PER_CHAT = 50
_SWEEP_READ_MESSAGES = 20  # newest messages compared in a private chat with nothing unread

IsRecorded = Callable[[int, list[int]], Awaitable[set[int]]]  # chat id, ids -> the stored ones


class UpdateMethods(AccountBase):
    # --- event handlers (every client gets them, see TelegramAccount._start) --------------------
    async def _on_update(self, update: Any) -> None:
        self.link.update_received()

    async def _on_new_message(self, event: events.NewMessage.Event) -> None:
        try:
            if event.message.out:
                await self._handle_outgoing(event.message)
            else:
                await self.take_in(event.message)
        except Exception:
            # One bad update must never stop the receive loop.
            log.exception("account %s: failed to handle message %s", self.name, event.message.id)

    async def _on_read(self, event: events.MessageRead.Event) -> None:
        """The owner read a chat on another device (updateReadHistoryInbox: Telegram pushes it
        to the account's other sessions, not to the one that read). The daemon's own read
        receipts never count: Telegram does not push them back to this session, but a
        getDifference after a gap replays them, so reads up to what the daemon marked read
        itself are dropped here."""
        handler = self._handlers.owner_read
        if handler is None or self._me is None or self._me.bot:
            return
        try:
            chat_id = event.chat_id
            if chat_id is None or chat_id == self._me.id:
                return  # Saved Messages: not a conversation
            if event.max_id <= self._own_reads.get(chat_id, 0):
                return  # the daemon's own read receipt
            await handler(mapping.to_owner_read(self.name, event, self._clock()))
        except Exception:
            log.exception("account %s: failed to handle a read receipt", self.name)

    async def _on_user_status(self, update: types.UpdateUserStatus) -> None:
        """The owner's own online status, set by their devices (the daemon never sets it)."""
        handler = self._handlers.owner_presence
        if handler is None or self._me is None or self._me.bot:
            return
        if update.user_id != self._me.id:
            return
        try:
            presence = mapping.to_owner_presence(self.name, update.status, self._clock())
            if presence is not None:
                await handler(presence)
        except Exception:
            log.exception("account %s: failed to handle the owner's status", self.name)

    async def _on_callback(self, event: events.CallbackQuery.Event) -> None:
        """A bot's button pressed: a draft's button is decided by the `button` handler (its
        answer shown to the presser); any other is answered at once (the user's spinner
        stops), then taken in as the user's turn, its text the button's label. Its message id
        is synthetic (above any real one: 2**31 + the query's low bits), so a press never
        collides with a message."""
        try:
            if self._handlers.button is not None and event.data:
                handled = await self._handlers.button(self.name, event.query.user_id, event.data)
                if handled is not None:
                    await event.answer(handled)
                    return
            await event.answer()
            label = event.data.decode("utf-8", "replace") if event.data else ""
            with contextlib.suppress(Exception):
                shown = await event.get_message()
                for text, data in mapping.callback_data(shown):
                    if data == event.data:
                        label = text
            press = types.Message(
                id=2**31 + (event.query.query_id & 0x7FFFFFFF),
                peer_id=types.PeerUser(event.query.user_id),
                date=self._clock(),
                message=label,
                from_id=types.PeerUser(event.query.user_id),
            )
            await self.take_in(press)
        except Exception:
            log.exception("account %s: failed to handle a button press", self.name)

    async def _on_edited(self, event: events.MessageEdited.Event) -> None:
        handler = self._handlers.owner_edited if event.message.out else self._handlers.edited
        if handler is None or (event.message.out and (self._me is None or self._me.bot)):
            return
        try:
            await handler(
                self.name,
                utils.get_peer_id(event.message.peer_id),
                event.message.id,
                event.message.message or "",
            )
        except Exception:
            log.exception("account %s: failed to handle an edit", self.name)

    async def _on_deleted(self, event: events.MessageDeleted.Event) -> None:
        handler = self._handlers.deleted
        if handler is None:
            return
        try:
            await handler(self.name, event.chat_id, list(event.deleted_ids))
        except Exception:
            log.exception("account %s: failed to handle a deletion", self.name)

    # --- intake ---------------------------------------------------------------------------------
    async def take_in(self, message: Any) -> bool:
        """Map and hand over one received message; False if it is not for the twin."""
        handler = self._handlers.incoming
        if handler is None or self._me is None:
            return False
        addressed = await self._addressed(message, owner_id=self._me.id)
        if addressed is None:
            return False
        chat, replies_to_owner = addressed
        sender = await self._sender_entity(message)
        incoming = mapping.to_incoming(
            self.name,
            message,
            sender=sender,
            chat=chat,
            owner_id=self._me.id,
            replies_to_owner=replies_to_owner,
        )
        await handler(incoming)
        if self._session is not None:
            # Persist the entity cache now (coalesced, in the background): after a crash the
            # reply must still be able to address this contact.
            self._session.save()
        return True

    async def _addressed(self, message: Any, *, owner_id: int) -> tuple[Any, bool] | None:
        """The message's chat entity and whether it replies to the owner, if the message is for
        the twin: recent, not from a channel, Saved Messages or Telegram's notifications, and in
        a group only when it mentions the owner or replies to them. None otherwise."""
        if message.date < self._clock() - timedelta(seconds=self._settings.max_catch_up_age):
            log.debug("account %s: skipping stale message %s", self.name, message.id)
            return None
        chat_id = utils.get_peer_id(message.peer_id)
        if chat_id == SERVICE_USER_ID:
            return None
        chat = await self._chat_entity(message)
        kind = mapping.chat_kind(chat, chat_id=chat_id, owner_id=owner_id)
        if kind in (ChatKind.CHANNEL, ChatKind.SAVED):
            return None
        replies_to_owner = False
        if kind in (ChatKind.GROUP, ChatKind.SUPERGROUP):
            replies_to_owner = await self._replies_to_owner(message)
            if not (message.mentioned or replies_to_owner):
                return None  # group chatter not addressed to the owner is not ours to store
        return chat, replies_to_owner

    async def _chat_entity(self, message: Any) -> Any:
        try:
            return await self.client.get_entity(message.peer_id)
        except (ValueError, errors.RPCError):
            return None

    async def _sender_entity(self, message: Any) -> Any:
        peer = message.from_id or message.peer_id
        try:
            return await self.client.get_entity(peer)
        except (ValueError, errors.RPCError):
            return None

    async def _replies_to_owner(self, message: Any) -> bool:
        reply = getattr(message, "reply_to", None)
        reply_id = getattr(reply, "reply_to_msg_id", None)
        if reply_id is None:
            return False
        if reply_id in self._sent_ids:
            return True
        try:
            original = await self.client.get_messages(message.peer_id, ids=reply_id)
        except errors.RPCError:
            return False
        return bool(original is not None and original.out)

    async def _handle_outgoing(self, message: Any) -> None:
        chat_id = utils.get_peer_id(message.peer_id)
        saved = self._me is not None and chat_id == self._me.id
        done = self._in_flight.done.get(chat_id)
        if done is not None:
            # Our own send may echo back before send_text() learned its id: wait for it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=30)
        if message.id in self._sent_ids:
            return
        if self._me is not None and self._me.bot:
            return  # a bot has no owner typing in it: nothing to take over
        command = self._handlers.owner_command
        # An owner command (`.twin off`), in any chat: handled there, never activity (a
        # forwarded message is someone else's words, never a command).
        if (
            command is not None
            and message.message
            and getattr(message, "fwd_from", None) is None
            and await command(mapping.to_owner_text(self.name, message, saved=saved))
        ):
            return
        if saved:
            return  # Saved Messages: notes to self are not a conversation
        handler = self._handlers.owner_activity
        if handler is not None:
            await handler(mapping.to_owner_activity(self.name, message))

    # --- the sweep ------------------------------------------------------------------------------
    async def sweep(self, is_recorded: IsRecorded) -> int:
        """Take in messages whose update never reached intake; returns how many.

        Every private chat whose last message is within `max_catch_up_age` has its newest
        messages compared with what is stored — read or not: a read receipt (the owner's, or
        one sent before a message could be stored) may have marked a chat read past a message
        that was never stored. Groups are checked when they have unread messages. An owner's
        message (from another device) newer than a missed one is taken in too, in order, so
        the twin does not answer what the owner already answered.

        A dialog is read again only when its newest message changed since it was last checked
        (the first sweep reads every one within `max_catch_up_age`): nothing new, nothing
        missed, so no request is spent on chats where nothing happened. A dialog Telegram
        refuses to show is logged and passed over; a flood wait or an outage ends the sweep
        (the dialogs not checked yet are read next time).

        `is_recorded(chat_id, ids)` answers which of the ids are already stored, so known
        messages cost no entity look-ups.
        """
        if self._me is None or self._me.bot:
            return 0  # bots have no dialogs: getDifference alone catches them up
        taken = 0
        cutoff = self._clock() - timedelta(seconds=self._settings.max_catch_up_age)
        with rpc_errors(self.name):
            dialogs = await self.client.get_dialogs(limit=_SWEEP_DIALOGS)
        for dialog in dialogs:
            limit = self._sweep_limit(dialog, cutoff)
            if limit is None:
                continue
            try:
                with rpc_errors(self.name):
                    messages = await self.client.get_messages(dialog.input_entity, limit=limit)
            except AdapterError as error:
                if error.transient:
                    raise
                log.info("account %s: sweep skips chat %s: %s", self.name, dialog.id, error)
                continue
            taken += await self._take_in_missed(dialog.id, messages, cutoff, is_recorded)
            self._checked_top[dialog.id] = dialog.message.id
        if taken:
            log.info("account %s: sweep took in %d missed message(s)", self.name, taken)
        return taken

    def _sweep_limit(self, dialog: Any, cutoff: datetime) -> int | None:
        """How many of a dialog's newest messages the sweep reads; None: none (no recent
        message, a broadcast channel, nothing new since the last check, a read group)."""
        last = dialog.message
        if last is None or last.date < cutoff or (dialog.is_channel and not dialog.is_group):
            return None
        if self._checked_top.get(dialog.id) == last.id:
            return None  # nothing new since this dialog was checked
        unread = min(dialog.unread_count, _SWEEP_MESSAGES_PER_CHAT)
        if dialog.is_user:
            return max(_SWEEP_READ_MESSAGES, unread)
        return unread if unread > 0 else None

    async def _take_in_missed(
        self,
        chat_id: int,
        messages: list[Any],
        cutoff: datetime,
        is_recorded: IsRecorded,
    ) -> int:
        """Take in a chat's messages that are not stored (with the owner's newer ones, in
        order); returns how many received messages were taken in."""
        recent = [m for m in messages if m.date >= cutoff]
        known = await is_recorded(chat_id, [m.id for m in recent]) if recent else set()
        missed = [m for m in recent if not m.out and m.id not in known]
        if not missed:
            return 0
        oldest = min(m.id for m in missed)
        owner = [
            m
            for m in recent
            if m.out and m.id > oldest and m.id not in known and m.id not in self._sent_ids
        ]
        taken = 0
        for message in sorted([*missed, *owner], key=lambda m: m.id):  # as they happened
            if message.out:
                await self._handle_outgoing(message)
            elif await self.take_in(message):
                taken += 1
        return taken
