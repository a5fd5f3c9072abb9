"""Message-box operations: post, read, edit, delete, history pages and difference replay.

Why: one logical message becomes one copy per participant, each with that account's own id,
and each copy raises its owner's pts by exactly one (UpdateNewMessage, pts_count=1); reads,
edits and deletions are translated between the participants' id spaces the same way. The
per-account update log written here is what `updates.getDifference` replays after a gap.
Nothing here touches sockets: operations return the per-account updates they produced and the
server decides whom to push them to.
"""

from __future__ import annotations

import datetime as dt
import re

from telethon.tl import types

from .models import Account, Copy, Group, LogEntry, RpcFailure, peer_key_of, peer_of
from .tl import Clock, utf16_len

_MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z][A-Za-z0-9_]{3,31})")


class MessageBoxes:
    """Mixin for `World`: everything that reads or writes the accounts' message boxes."""

    clock: Clock
    accounts: dict[int, Account]
    groups: dict[int, Group]
    logical: dict[int, dict[int, int]]
    logical_sender: dict[int, int]
    _next_logical: int

    def recipients(self, sender: Account, peer_key: int) -> list[int]:
        """Everyone who gets a copy of a message sent by `sender` to `peer_key`."""
        if peer_key > 0:
            return [sender.id] if peer_key == sender.id else [sender.id, peer_key]
        group = self.groups.get(-peer_key)
        if group is None or sender.id not in group.member_ids:
            raise RpcFailure(400, "CHAT_ID_INVALID")
        return [sender.id, *(m for m in group.member_ids if m != sender.id)]

    def local_peer(self, owner_id: int, sender_id: int, peer_key: int) -> int:
        """How `owner` files a message from `sender` addressed to `peer_key`."""
        if peer_key < 0 or owner_id == sender_id:
            return peer_key
        return sender_id

    def post_message(
        self,
        sender: Account,
        peer_key: int,
        *,
        text: str = "",
        entities: list | None = None,
        media: types.TypeMessageMedia | None = None,
        action: types.TypeMessageAction | None = None,
        reply_to_local: int | None = None,
        random_id: int | None = None,
        silent: bool = False,
        reply_markup: types.TypeReplyMarkup | None = None,
    ) -> list[Copy]:
        """Create one copy per participant; the sender's copy comes first. `reply_markup`
        (keyboards) is kept only from bots, as Telegram does."""
        if not sender.bot:
            reply_markup = None
        if random_id is not None and random_id in sender.random_ids:
            raise RpcFailure(500, "RANDOM_ID_DUPLICATE")
        recipients = self.recipients(sender, peer_key)
        reply_logical = None
        if reply_to_local:
            reply_logical = sender.logical_of.get(reply_to_local)
        entities = list(entities or [])
        if action is None:
            entities = self._with_mentions(text, entities)
        logical_id = self._next_logical
        self._next_logical += 1
        self.logical[logical_id] = {}
        self.logical_sender[logical_id] = sender.id
        date = self.clock.date()
        copies = []
        for uid in recipients:
            owner = self.accounts[uid]
            local_id = owner.next_message_id
            owner.next_message_id += 1
            out = uid == sender.id
            reply_header = None
            mentioned = False
            if reply_logical is not None:
                target = self.logical.get(reply_logical, {}).get(uid)
                if target is not None:
                    reply_header = types.MessageReplyHeader(reply_to_msg_id=target)
                    # In groups a reply to one of your messages counts as a mention.
                    mentioned = (
                        peer_key < 0 and not out and self.logical_sender.get(reply_logical) == uid
                    )
            if peer_key < 0 and not out:
                mentioned = mentioned or self._mentions(owner, text, entities)
            local_peer = self.local_peer(uid, sender.id, peer_key)
            common = {
                "id": local_id,
                "peer_id": peer_of(local_peer),
                "date": date,
                "out": out or None,
                "mentioned": mentioned or None,
                "media_unread": (mentioned and not out) or None,
                "silent": silent or None,
                "from_id": types.PeerUser(sender.id) if (out or peer_key < 0) else None,
                "reply_to": reply_header,
            }
            if action is not None:
                message = types.MessageService(action=action, **common)
            else:
                message = types.Message(
                    message=text, media=media, entities=entities or None,
                    reply_markup=reply_markup, **common
                )
            owner.messages[local_id] = message
            owner.logical_of[local_id] = logical_id
            owner.dialog(local_peer).message_ids.append(local_id)
            if out:
                owner.dialog(local_peer).read_inbox_max_id = max(
                    owner.dialog(local_peer).read_inbox_max_id, local_id
                )
            update = types.UpdateNewMessage(message=message, pts=0, pts_count=1)
            owner.add_update(update)
            self.logical[logical_id][uid] = local_id
            copies.append(Copy(uid, message, update))
        if random_id is not None:
            sender.random_ids[random_id] = copies[0].message.id
        return copies

    def _with_mentions(self, text: str, entities: list) -> list:
        """Resolve InputMessageEntityMentionName and add @username mention entities."""
        resolved = []
        for entity in entities:
            if isinstance(entity, types.InputMessageEntityMentionName):
                user_id = getattr(entity.user_id, "user_id", None)
                if user_id not in self.accounts:
                    raise RpcFailure(400, "ENTITY_MENTION_USER_INVALID")
                entity = types.MessageEntityMentionName(entity.offset, entity.length, user_id)
            resolved.append(entity)
        taken = {(e.offset, e.length) for e in resolved}
        for match in _MENTION_RE.finditer(text):
            offset = utf16_len(text[: match.start()])
            length = utf16_len(match.group(0))
            if (offset, length) not in taken:
                resolved.append(types.MessageEntityMention(offset=offset, length=length))
        resolved.sort(key=lambda e: e.offset)
        return resolved

    def _mentions(self, owner: Account, text: str, entities: list) -> bool:
        encoded = text.encode("utf-16-le")
        for entity in entities:
            if isinstance(entity, types.MessageEntityMentionName) and entity.user_id == owner.id:
                return True
            if isinstance(entity, types.MessageEntityMention) and owner.username:
                raw = encoded[entity.offset * 2 : (entity.offset + entity.length) * 2]
                if raw.decode("utf-16-le").lstrip("@").lower() == owner.username.lower():
                    return True
        return False

    def copies_of(self, owner: Account, local_id: int) -> dict[int, int]:
        logical_id = owner.logical_of.get(local_id)
        return dict(self.logical.get(logical_id, {})) if logical_id else {}

    def read_history(
        self, reader: Account, peer_key: int, max_id: int
    ) -> tuple[int, int, list[tuple[int, types.TypeUpdate]]]:
        """Mark incoming messages up to max_id read; returns (pts, pts_count, updates)."""
        dialog = reader.dialogs.get(peer_key)
        if dialog is None or not dialog.message_ids:
            return reader.pts, 0, []
        new_max = dialog.top_message if max_id <= 0 else min(max_id, dialog.top_message)
        if new_max <= dialog.read_inbox_max_id:
            return reader.pts, 0, []
        old_max = dialog.read_inbox_max_id
        dialog.read_inbox_max_id = new_max
        produced: list[tuple[int, types.TypeUpdate]] = []
        inbox = types.UpdateReadHistoryInbox(
            peer=peer_of(peer_key), max_id=new_max,
            still_unread_count=reader.unread_count(dialog), pts=0, pts_count=1,
        )
        reader.add_update(inbox)
        produced.append((reader.id, inbox))
        # Tell every sender of a newly read message how far their outbox was read.
        outbox_max: dict[int, int] = {}
        for mid in dialog.message_ids:
            if old_max < mid <= new_max and not reader.messages[mid].out:
                logical_id = reader.logical_of.get(mid)
                sender_id = self.logical_sender.get(logical_id)
                sender_local = self.logical.get(logical_id, {}).get(sender_id)
                if sender_id is not None and sender_local is not None:
                    outbox_max[sender_id] = max(outbox_max.get(sender_id, 0), sender_local)
        for sender_id, local_max in outbox_max.items():
            sender = self.accounts[sender_id]
            sender_peer = reader.id if peer_key > 0 else peer_key
            sender_dialog = sender.dialog(sender_peer)
            if local_max <= sender_dialog.read_outbox_max_id:
                continue
            sender_dialog.read_outbox_max_id = local_max
            outbox = types.UpdateReadHistoryOutbox(
                peer=peer_of(sender_peer), max_id=local_max, pts=0, pts_count=1
            )
            sender.add_update(outbox)
            produced.append((sender_id, outbox))
        return reader.pts, 1, produced

    def edit_message(
        self, editor: Account, local_id: int, text: str, entities: list | None
    ) -> list[tuple[int, types.UpdateEditMessage]]:
        message = editor.messages.get(local_id)
        if message is None or isinstance(message, types.MessageService):
            raise RpcFailure(400, "MESSAGE_ID_INVALID")
        if not message.out:
            raise RpcFailure(403, "MESSAGE_AUTHOR_REQUIRED")
        entities = self._with_mentions(text, list(entities or []))
        if message.message == text and (message.entities or []) == entities:
            raise RpcFailure(400, "MESSAGE_NOT_MODIFIED")
        produced = []
        for uid, copy_id in self.copies_of(editor, local_id).items():
            owner = self.accounts[uid]
            copy = owner.messages.get(copy_id)
            if copy is None:
                continue
            copy.message = text
            copy.entities = entities or None
            copy.edit_date = self.clock.date()
            update = types.UpdateEditMessage(message=copy, pts=0, pts_count=1)
            owner.add_update(update)
            produced.append((uid, update))
        return produced

    def delete_messages(
        self, user: Account, ids: list[int], revoke: bool
    ) -> list[tuple[int, types.UpdateDeleteMessages]]:
        per_user: dict[int, list[int]] = {}
        for local_id in ids:
            if local_id not in user.messages:
                continue
            targets = self.copies_of(user, local_id) if revoke else {user.id: local_id}
            for uid, copy_id in targets.items():
                per_user.setdefault(uid, []).append(copy_id)
        produced = []
        for uid, copy_ids in per_user.items():
            owner = self.accounts[uid]
            removed = [cid for cid in copy_ids if cid in owner.messages]
            for cid in removed:
                message = owner.messages.pop(cid)
                owner.logical_of.pop(cid, None)
                key = peer_key_of(message.peer_id)
                if key in owner.dialogs and cid in owner.dialogs[key].message_ids:
                    owner.dialogs[key].message_ids.remove(cid)
            if removed:
                update = types.UpdateDeleteMessages(messages=removed, pts=0, pts_count=0)
                owner.add_update(update, pts_count=len(removed))
                produced.append((uid, update))
        return produced

    def history(
        self,
        owner: Account,
        peer_key: int,
        *,
        offset_id: int = 0,
        offset_date: dt.datetime | None = None,
        add_offset: int = 0,
        limit: int = 100,
        max_id: int = 0,
        min_id: int = 0,
    ) -> tuple[list[types.TypeMessage], int]:
        """messages.getHistory semantics over one dialog; returns (page, total count)."""
        dialog = owner.dialogs.get(peer_key)
        ids = list(reversed(dialog.message_ids)) if dialog else []  # newest first
        start = 0
        if offset_id:
            start = next((i for i, mid in enumerate(ids) if mid < offset_id), len(ids))
        elif offset_date is not None and offset_date.timestamp() > 0:  # 0 arrives as the epoch
            start = next(
                (i for i, mid in enumerate(ids) if owner.messages[mid].date < offset_date),
                len(ids),
            )
        start = max(0, start + add_offset)
        limit = max(0, min(limit or 100, 100))
        page = [
            mid
            for mid in ids[start : start + limit]
            if (not max_id or mid < max_id) and (not min_id or mid > min_id)
        ]
        return [owner.messages[mid] for mid in page], len(ids)

    def difference(
        self, owner: Account, pts: int, limit: int = 1000
    ) -> tuple[list[LogEntry], int]:
        """Log entries after `pts` (at most `limit`); returns (entries, pts they reach)."""
        entries = [e for e in owner.log if e.pts > pts]
        if len(entries) > limit:
            entries = entries[:limit]
        reached = entries[-1].pts if entries else owner.pts
        return entries, reached
