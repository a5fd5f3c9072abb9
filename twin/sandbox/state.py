"""The sandbox's world: all server state, plus account, group, code and file operations.

Why it is separate from the RPC layer: everything here is plain synchronous data manipulation
that tests may also drive directly (server-side sends from bots, assertions on history).
Records live in models.py, message-box operations in boxes.py (mixed into `World`). The names
other modules need are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable
from typing import Any

from telethon.tl import types

from .boxes import MessageBoxes
from .models import (
    SERVICE_PHONE,
    SERVICE_USER_ID,
    Account,
    Authorization,
    Copy,
    Dialog,
    Group,
    LogEntry,
    LoginCode,
    RpcFailure,
    StoredFile,
    normalize_phone,
    peer_key_of,
    peer_of,
)
from .srp import PasswordVerifier
from .tl import Clock

_USERNAME_RE = re.compile(r"^[a-z](?:(?!__)\w){1,30}[a-z\d]$", re.IGNORECASE)

__all__ = [
    "SERVICE_PHONE",
    "SERVICE_USER_ID",
    "Account",
    "Authorization",
    "Copy",
    "Dialog",
    "Group",
    "LogEntry",
    "LoginCode",
    "RpcFailure",
    "StoredFile",
    "World",
    "normalize_phone",
    "peer_key_of",
    "peer_of",
]


class World(MessageBoxes):
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
        # Callback queries waiting for the bot's answer (twin.sandbox.api_bots): query id ->
        # the pressing user's pending call.
        self.callback_queries: dict[int, Any] = {}
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

    def issue_code(self, phone: str, phone_code_hash: str | None = None) -> LoginCode:
        """A new code for `phone` (a resend keeps the login's `phone_code_hash`)."""
        code = self.fixed_code or f"{secrets.randbelow(100000):05d}"
        login = LoginCode(
            phone=phone,
            code=code,
            phone_code_hash=phone_code_hash or secrets.token_hex(8),
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
