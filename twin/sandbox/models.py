"""Plain data of the sandbox world: accounts, dialogs, groups, authorizations, codes, files.

Why a module of its own: these records are shared by the world's operations (state.py,
boxes.py), the RPC handlers and the tests' assertions, and they carry the invariants Telethon
relies on: every account has its own message-id sequence and its own `pts`, which starts at 1
(never 0: Telethon treats pts 0 as "unknown" and then loses offline messages) and only grows.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field

from telethon.crypto import AuthKey
from telethon.tl import types

from .srp import PasswordVerifier

SERVICE_USER_ID = 777000
SERVICE_PHONE = "42777"
_PHONE_RE = re.compile(r"^\d{5,15}$")


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


@dataclass(frozen=True)
class StatusUpdate:
    """One account.updateStatus: who, from which authorization key, online or offline."""

    user_id: int
    auth_key_id: int
    offline: bool


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


def peer_key_of(peer: types.TypePeer) -> int:
    """Peer -> marked key (the inverse of `peer_of`)."""
    if isinstance(peer, types.PeerUser):
        return peer.user_id
    if isinstance(peer, types.PeerChat):
        return -peer.chat_id
    raise RpcFailure(400, "PEER_ID_INVALID")
