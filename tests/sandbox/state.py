"""The sandbox's world: accounts, authorizations, per-account message boxes, groups and files.

Why it is separate from the RPC layer: everything here is plain synchronous data manipulation
that tests may also drive directly (server-side sends from bots, assertions on history), and
it encodes the Telegram rules Telethon depends on:

* every account has its own message-id sequence and its own `pts` (starting at 1, never 0);
* one logical message has one copy per participant, each with that account's id, and
  every copy raises its owner's pts by exactly one (UpdateNewMessage, pts_count=1);
* the update log per account is what `updates.getDifference` replays after a gap.

Nothing in this module touches sockets: methods return the per-account updates they produced
and the server decides whom to push them to.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from telethon.crypto import AuthKey
from telethon.tl import types

from .srp import PasswordVerifier
from .tl import Clock, utf16_len

SERVICE_USER_ID = 777000
SERVICE_PHONE = "42777"
_PHONE_RE = re.compile(r"^\d{5,15}$")
_USERNAME_RE = re.compile(r"^[a-z](?:(?!__)\w){1,30}[a-z\d]$", re.IGNORECASE)
_MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z][A-Za-z0-9_]{3,31})")


class RpcFailure(Exception):
    """A rule violation that maps to an RPC error (code, TELEGRAM_STYLE_MESSAGE)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def normalize_phone(phone: str | int) -> str:
    """Digits only: Telethon strips '+', spaces and dashes before sending, so do we."""
    digits = re.sub(r"[\s\-()+]", "", str(phone))
    if not _PHONE_RE.match(digits):
        raise RpcFailure(400, "PHONE_NUMBER_INVALID")
    return digits


def peer_of(key: int) -> types.PeerUser | types.PeerChat:
    """Peer keys are Telethon-style marked ids: users positive, basic groups negative."""
    return types.PeerUser(key) if key > 0 else types.PeerChat(-key)


@dataclass
class Dialog:
    """One account's view of one conversation."""

    peer_key: int
    message_ids: list[int] = field(default_factory=list)  # ascending, this account's ids
    read_inbox_max_id: int = 0
    read_outbox_max_id: int = 0

    @property
    def top_message(self) -> int:
        return self.message_ids[-1] if self.message_ids else 0


@dataclass
class LogEntry:
    pts: int
    pts_count: int
    update: types.TypeUpdate


@dataclass
class Account:
    id: int
    phone: str
    first_name: str
    last_name: str = ""
    username: str | None = None
    bot: bool = False
    access_hash: int = field(default_factory=lambda: secrets.randbits(63))
    password: PasswordVerifier | None = None
    bot_token: str | None = None
    contacts: dict[int, tuple[str, str]] = field(default_factory=dict)
    pts: int = 1  # never 0: Telethon treats pts 0 as "unknown" and loses offline messages
    next_message_id: int = 1
    messages: dict[int, types.TypeMessage] = field(default_factory=dict)
    logical_of: dict[int, int] = field(default_factory=dict)  # local id -> logical id
    log: list[LogEntry] = field(default_factory=list)
    dialogs: dict[int, Dialog] = field(default_factory=dict)
    random_ids: dict[int, int] = field(default_factory=dict)  # random_id -> local id
    online: bool = False

    def dialog(self, peer_key: int) -> Dialog:
        dialog = self.dialogs.get(peer_key)
        if dialog is None:
            dialog = self.dialogs[peer_key] = Dialog(peer_key)
        return dialog

    def add_update(self, update: types.TypeUpdate, pts_count: int = 1) -> int:
        """Advance pts by pts_count, stamp the update with it and log it."""
        self.pts += pts_count
        update.pts, update.pts_count = self.pts, pts_count
        self.log.append(LogEntry(self.pts, pts_count, update))
        return self.pts

    def unread_count(self, dialog: Dialog) -> int:
        return sum(
            1
            for mid in reversed(dialog.message_ids)
            if mid > dialog.read_inbox_max_id and not self.messages[mid].out
        )

    def unread_mentions(self, dialog: Dialog) -> int:
        return sum(
            1
            for mid in dialog.message_ids
            if mid > dialog.read_inbox_max_id and getattr(self.messages[mid], "mentioned", False)
        )


@dataclass
class Group:
    """A basic group (messages.createChat): messages live in the members' own boxes."""

    id: int
    title: str
    creator_id: int
    member_ids: list[int]
    date: dt.datetime
    version: int = 1


@dataclass
class Authorization:
    """An auth key and what it is bound to; survives reconnects for the server's lifetime."""

    auth_key: AuthKey
    salt: int
    user_id: int | None = None
    pending_2fa_user_id: int | None = None
    sessions: set[int] = field(default_factory=set)
    client_info: dict[str, object] = field(default_factory=dict)


@dataclass
class LoginCode:
    phone: str
    code: str
    phone_code_hash: str
    expires_at: float
    verified: bool = False  # right code given, waiting for auth.signUp


@dataclass
class StoredFile:
    """An uploaded file turned into a Document or Photo; `data` is what getFile serves."""

    data: bytes
    media: types.Document | types.Photo


@dataclass
class Copy:
    """One participant's copy of a logical message, with the pts it was logged at."""

    user_id: int
    message: types.TypeMessage
    update: types.UpdateNewMessage


class World:
    """All server state. Single-threaded: every method runs to completion on the event loop."""

    def __init__(self, clock: Clock, *, dc_id: int, code_ttl: float = 300.0) -> None:
        self.clock = clock
        self.dc_id = dc_id
        self.code_ttl = code_ttl
        self.fixed_code: str | None = None
        self.accounts: dict[int, Account] = {}
        self.by_phone: dict[str, int] = {}
        self.by_username: dict[str, int] = {}
        self.groups: dict[int, Group] = {}
        self.auths: dict[int, Authorization] = {}
        self.codes: dict[str, LoginCode] = {}
        self.last_codes: dict[str, str] = {}
        self.files: dict[int, StoredFile] = {}
        self.uploads: dict[tuple[int, int], dict[int, bytes]] = {}
        self.logical: dict[int, dict[int, int]] = {}  # logical id -> {user id: local id}
        self.logical_sender: dict[int, int] = {}
        self._next_user_id = 1_000_001
        self._next_group_id = 5_000_001
        self._next_logical = 1
        self.create_account(
            SERVICE_PHONE, "Telegram", user_id=SERVICE_USER_ID, username=None
        )

    # -- accounts -----------------------------------------------------------------------

    def create_account(
        self,
        phone: str | int,
        first_name: str,
        last_name: str = "",
        *,
        username: str | None = None,
        password: str | None = None,
        bot: bool = False,
        user_id: int | None = None,
    ) -> Account:
        phone = normalize_phone(phone)
        if phone in self.by_phone:
            raise RpcFailure(400, "PHONE_NUMBER_OCCUPIED")
        if username is not None:
            username = username.lstrip("@")
            if not _USERNAME_RE.match(username):
                raise RpcFailure(400, "USERNAME_INVALID")  # what Telethon can resolve
            if username.lower() in self.by_username:
                raise RpcFailure(400, "USERNAME_OCCUPIED")
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        account = Account(
            id=user_id, phone=phone, first_name=first_name, last_name=last_name,
            username=username, bot=bot,
        )
        if password:
            account.password = PasswordVerifier.create(password)
        if bot:
            account.bot_token = f"{user_id}:SANDBOX{secrets.token_hex(12)}"
        self.accounts[user_id] = account
        self.by_phone[phone] = user_id
        if username:
            self.by_username[username.lower()] = user_id
        return account

    def account(self, ref: Account | int | str) -> Account:
        """Look an account up by object, user id, phone or @username."""
        if isinstance(ref, Account):
            return ref
        if isinstance(ref, int):
            if ref in self.accounts:
                return self.accounts[ref]
            raise RpcFailure(400, "USER_ID_INVALID")
        if ref.startswith("@"):
            uid = self.by_username.get(ref[1:].lower())
        else:
            uid = self.by_phone.get(normalize_phone(ref))
        if uid is None:
            raise KeyError(ref)
        return self.accounts[uid]

    def add_contact(
        self, owner: Account, contact: Account, first: str = "", last: str = ""
    ) -> None:
        owner.contacts[contact.id] = (first or contact.first_name, last or contact.last_name)

    def user_view(self, uid: int, viewer_id: int | None) -> types.User:
        """The User object as `viewer_id` sees it (contact flags, saved name, phone)."""
        user = self.accounts[uid]
        viewer = self.accounts.get(viewer_id) if viewer_id is not None else None
        is_self = uid == viewer_id
        contact = bool(viewer and uid in viewer.contacts)
        mutual = contact and viewer_id in user.contacts
        first, last = user.first_name, user.last_name
        if contact and not is_self:
            first, last = viewer.contacts[uid]
        status = None
        if not user.bot:
            status = (
                types.UserStatusOnline(expires=self.clock.date() + dt.timedelta(minutes=5))
                if user.online
                else types.UserStatusRecently()
            )
        return types.User(
            id=uid,
            is_self=is_self or None,
            contact=contact or None,
            mutual_contact=mutual or None,
            bot=user.bot or None,
            bot_info_version=1 if user.bot else None,
            verified=uid == SERVICE_USER_ID or None,
            support=uid == SERVICE_USER_ID or None,
            access_hash=user.access_hash,
            first_name=first,
            last_name=last or None,
            username=user.username,
            phone=user.phone if (is_self or contact or uid == SERVICE_USER_ID) else None,
            status=status,
        )

    def chat_view(self, chat_id: int, viewer_id: int | None) -> types.Chat:
        group = self.groups[chat_id]
        return types.Chat(
            id=group.id,
            title=group.title,
            photo=types.ChatPhotoEmpty(),
            participants_count=len(group.member_ids),
            date=group.date,
            version=group.version,
            creator=viewer_id == group.creator_id or None,
            left=viewer_id not in group.member_ids or None,
        )

    def entities(
        self, viewer_id: int, user_ids: Iterable[int] = (), chat_ids: Iterable[int] = ()
    ) -> tuple[list[types.User], list[types.Chat]]:
        users = [
            self.user_view(u, viewer_id) for u in dict.fromkeys(user_ids) if u in self.accounts
        ]
        chats = [
            self.chat_view(c, viewer_id) for c in dict.fromkeys(chat_ids) if c in self.groups
        ]
        return users, chats

    def entities_of(
        self, viewer_id: int, objects: Iterable[object], peer_keys: Iterable[int] = ()
    ) -> tuple[list, list]:
        """Users and chats referenced by messages/updates (plus `peer_keys` and the viewer)."""
        user_ids: list[int] = [viewer_id]
        chat_ids: list[int] = []
        for key in peer_keys:
            (user_ids if key > 0 else chat_ids).append(abs(key))
        for obj in objects:
            _collect_refs(obj, user_ids, chat_ids)
        return self.entities(viewer_id, user_ids, chat_ids)

    # -- login codes ----------------------------------------------------------------------

    def issue_code(self, phone: str) -> LoginCode:
        code = self.fixed_code or f"{secrets.randbelow(100000):05d}"
        login = LoginCode(
            phone=phone,
            code=code,
            phone_code_hash=secrets.token_hex(8),
            expires_at=self.clock.now() + self.code_ttl,
        )
        self.codes[phone] = login
        self.last_codes[phone] = code
        return login

    def check_code(self, phone: str, phone_code_hash: str, code: str | None) -> LoginCode:
        login = self.codes.get(phone)
        if login is None or login.phone_code_hash != phone_code_hash:
            raise RpcFailure(400, "PHONE_CODE_EXPIRED")
        if self.clock.now() > login.expires_at:
            raise RpcFailure(400, "PHONE_CODE_EXPIRED")
        if not code:
            raise RpcFailure(400, "PHONE_CODE_EMPTY")
        if code != login.code:
            raise RpcFailure(400, "PHONE_CODE_INVALID")
        return login

    # -- groups -----------------------------------------------------------------------------

    def create_group(self, creator: Account, title: str, members: Iterable[Account]) -> Group:
        if not title.strip():
            raise RpcFailure(400, "CHAT_TITLE_EMPTY")
        member_ids = list(dict.fromkeys([creator.id, *(m.id for m in members)]))
        group = Group(
            id=self._next_group_id, title=title, creator_id=creator.id,
            member_ids=member_ids, date=self.clock.date(),
        )
        self._next_group_id += 1
        self.groups[group.id] = group
        return group

    # -- messages ---------------------------------------------------------------------------

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
    ) -> list[Copy]:
        """Create one copy per participant; the sender's copy comes first."""
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
                    message=text, media=media, entities=entities or None, **common
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
                key = _peer_key(message.peer_id)
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

    # -- files ------------------------------------------------------------------------------

    def assemble_upload(self, key_id: int, file_id: int, parts: int) -> bytes:
        chunks = self.uploads.pop((key_id, file_id), None)
        if chunks is None:
            raise RpcFailure(400, "FILE_PARTS_INVALID")
        if sorted(chunks) != list(range(parts)):
            missing = sorted(set(range(parts)) - set(chunks))
            raise RpcFailure(400, f"FILE_PART_{missing[0] if missing else parts}_MISSING")
        return b"".join(chunks[i] for i in range(parts))

    def store_document(
        self, data: bytes, mime_type: str, attributes: list
    ) -> types.Document:
        doc = types.Document(
            id=secrets.randbits(63),
            access_hash=secrets.randbits(63),
            file_reference=secrets.token_bytes(8),
            date=self.clock.date(),
            mime_type=mime_type or "application/octet-stream",
            size=len(data),
            dc_id=self.dc_id,
            attributes=attributes,
        )
        self.files[doc.id] = StoredFile(data, doc)
        return doc

    def store_photo(self, data: bytes) -> types.Photo:
        photo = types.Photo(
            id=secrets.randbits(63),
            access_hash=secrets.randbits(63),
            file_reference=secrets.token_bytes(8),
            date=self.clock.date(),
            sizes=[types.PhotoSize(type="x", w=800, h=800, size=len(data))],
            dc_id=self.dc_id,
        )
        self.files[photo.id] = StoredFile(data, photo)
        return photo


def _peer_key(peer: types.TypePeer) -> int:
    if isinstance(peer, types.PeerUser):
        return peer.user_id
    if isinstance(peer, types.PeerChat):
        return -peer.chat_id
    raise RpcFailure(400, "PEER_ID_INVALID")


peer_key_of = _peer_key


def _collect_refs(obj: object, user_ids: list[int], chat_ids: list[int]) -> None:
    """Collect user and chat ids referenced by a message or update (one level deep)."""
    message = getattr(obj, "message", None)
    if isinstance(message, types.Message | types.MessageService):
        obj = message
    for attr in ("peer_id", "from_id", "peer"):
        peer = getattr(obj, attr, None)
        if isinstance(peer, types.PeerUser):
            user_ids.append(peer.user_id)
        elif isinstance(peer, types.PeerChat):
            chat_ids.append(peer.chat_id)
    for attr in ("user_id",):
        value = getattr(obj, attr, None)
        if isinstance(value, int):
            user_ids.append(value)
    action = getattr(obj, "action", None)
    if isinstance(action, types.MessageActionChatCreate | types.MessageActionChatAddUser):
        user_ids.extend(action.users)
    for entity in getattr(obj, "entities", None) or []:
        if isinstance(entity, types.MessageEntityMentionName):
            user_ids.append(entity.user_id)
