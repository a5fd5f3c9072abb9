"""Sending primitives: a chat's input peer, text and voice messages sent exactly once (by the
caller's random_id), the typing action, read receipts and media downloads.

A mixin of TelegramAccount (account.py) built on AccountBase (base.py), as Telethon's
`client/messages.py` is of its client."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from telethon import Button, errors, functions, types, utils

from twin.adapters.telegram import mapping
from twin.adapters.telegram.base import AccountBase
from twin.adapters.telegram.records import SendResult
from twin.adapters.telegram.refusals import rpc_errors
from twin.errors import InvalidInput, TwinError

log = logging.getLogger("twin.telegram")

TYPING_ACTIONS = {
    "typing": types.SendMessageTypingAction,
    "record_voice": types.SendMessageRecordAudioAction,
    "cancel": types.SendMessageCancelAction,
}


class SendingMethods(AccountBase):
    async def input_peer(self, chat: int | str) -> Any:
        """A chat by id, "@username" or "+phone" as Telethon's input peer."""
        self.require_authorized()
        if isinstance(chat, str) and chat.startswith("+"):
            chat = "+" + mapping.normalize_phone(chat)
        with rpc_errors(self.name):
            peer = await self._cached_input_peer(chat)
            bot = self._me is not None and self._me.bot  # bots have no dialogs to look in
            if peer is None and isinstance(chat, int) and not bot:
                # Not cached (e.g. lost in a crash): the dialogs carry every access hash.
                await self.client.get_dialogs(limit=200)
                peer = await self._cached_input_peer(chat)
        if peer is None:
            raise InvalidInput("chat", "unknown chat: not in this account's dialogs")
        return peer

    async def _cached_input_peer(self, chat: int | str) -> Any:
        """Telethon's input peer of a chat it knows (its entity cache, or a username/phone it
        resolves); None when it does not."""
        try:
            return await self.client.get_input_entity(chat)
        except ValueError:
            return None

    async def resolve_peer_id(self, chat: int | str) -> int:
        """The Telegram peer id of a chat given by id, "@username" or "+phone"."""
        return self._peer_id(await self.input_peer(chat))

    def _peer_id(self, peer: Any) -> int:
        if isinstance(peer, types.InputPeerSelf):  # "me": Saved Messages
            self.require_authorized()
            return self._me.id  # type: ignore[union-attr]
        return utils.get_peer_id(peer)

    async def _guarded_send(self, chat_id: int, request: Any, random_id: int) -> SendResult:
        self.require_authorized()
        with self._in_flight.sending(chat_id):
            try:
                with rpc_errors(self.name, passthrough=(errors.RandomIdDuplicateError,)):
                    result = await self.client(request)
            except errors.RandomIdDuplicateError:
                log.info(
                    "account %s: random_id already used: the message was sent before", self.name
                )
                return SendResult(message_id=None, duplicate=True)
            message_id = _sent_message_id(result, random_id)
            if message_id is not None:
                self._sent_ids.append(message_id)
            return SendResult(message_id=message_id)

    async def send_text(
        self,
        chat: int | str,
        text: str,
        *,
        random_id: int,
        reply_to: int | None = None,
        buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> SendResult:
        """Send `text` with a random_id the caller persisted first (exactly-once across crashes);
        `buttons` (a bot's inline keyboard: rows of label and callback data)."""
        peer = await self.input_peer(chat)
        markup = None
        if buttons:
            if self._me is None or not self._me.bot:
                raise InvalidInput("buttons", "only a bot can send an inline keyboard")
            markup = self.client.build_reply_markup(
                [[Button.inline(label, data.encode()) for label, data in row] for row in buttons]
            )
        request = functions.messages.SendMessageRequest(
            peer=peer,
            message=text,
            random_id=random_id,
            no_webpage=True,
            reply_to=types.InputReplyToMessage(reply_to_msg_id=reply_to) if reply_to else None,
            reply_markup=markup,
        )
        return await self._guarded_send(self._peer_id(peer), request, random_id)

    async def send_voice(
        self,
        chat: int | str,
        ogg_opus: bytes,
        *,
        duration: float,
        waveform: bytes,
        random_id: int,
        caption: str = "",
    ) -> SendResult:
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            uploaded = await self.client.upload_file(ogg_opus, file_name="voice.ogg")
        media = types.InputMediaUploadedDocument(
            file=uploaded,
            mime_type="audio/ogg",
            attributes=[
                types.DocumentAttributeAudio(
                    duration=max(1, round(duration)), voice=True, waveform=waveform
                )
            ],
        )
        request = functions.messages.SendMediaRequest(
            peer=peer, media=media, message=caption, random_id=random_id
        )
        return await self._guarded_send(self._peer_id(peer), request, random_id)

    async def download_media(self, chat: int | str, message_id: int) -> bytes:
        """The bytes of a message's media (a voice note to transcribe)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name, passthrough=(TwinError,)):
            message = await self.client.get_messages(peer, ids=message_id)
            if message is None or message.media is None:
                raise InvalidInput("message", f"message {message_id} has no media")
            data = await self.client.download_media(message, file=bytes)
        return bytes(data)

    async def set_action(self, chat: int | str, action: str = "typing") -> None:
        """Show "typing…" / "recording voice…" (Telegram shows it for ~5 s per call)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            await self.client(functions.messages.SetTypingRequest(peer, TYPING_ACTIONS[action]()))

    async def mark_read(self, chat: int | str, max_id: int) -> None:
        if self._me is not None and self._me.bot:
            return  # bots have no read marks (Telegram: BOT_METHOD_INVALID)
        peer = await self.input_peer(chat)
        chat_id = utils.get_peer_id(peer)
        # Remembered before the request: its echo (a getDifference after a gap) must never
        # count as the owner reading from another device.
        self._own_reads[chat_id] = max(self._own_reads.get(chat_id, 0), max_id)
        with rpc_errors(self.name):
            await self.client.send_read_acknowledge(peer, max_id=max_id)

    async def delete_messages(self, chat: int | str, message_ids: Sequence[int]) -> int:
        """Delete messages of a chat for everyone in it (`revoke`: the other side no longer
        sees them either; the owner's other devices are told by Telegram). Returns how many
        Telegram deleted (0: they were gone already)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            affected = await self.client.delete_messages(peer, list(message_ids), revoke=True)
        return sum(getattr(a, "pts_count", 0) for a in affected or [])


def _sent_message_id(result: Any, random_id: int) -> int | None:
    if isinstance(result, types.UpdateShortSentMessage):
        return result.id
    updates = getattr(result, "updates", None) or []
    for update in updates:
        if isinstance(update, types.UpdateMessageID) and update.random_id == random_id:
            return update.id
    for update in updates:
        if isinstance(update, types.UpdateNewMessage | types.UpdateNewChannelMessage):
            return update.message.id
    return None
