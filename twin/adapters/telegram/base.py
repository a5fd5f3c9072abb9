"""What every part of a Telegram account shares: its state, its Telethon client and the login
check. The mixins (auth.py, updates.py, sending.py, history.py) build on AccountBase, as
Telethon's client mixins build on `TelegramBaseClient`; account.py composes them."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telethon import TelegramClient

from twin.adapters.telegram.client import new_link
from twin.adapters.telegram.link import LinkState
from twin.adapters.telegram.records import TelegramUser
from twin.adapters.telegram.session import DatabaseSession, SessionStore
from twin.config import TelegramSettings
from twin.domain.commands import OwnerText
from twin.domain.models import IncomingMessage, OwnerActivity, OwnerPresence, OwnerRead
from twin.errors import TelegramUnavailable, Unauthorized
from twin.ports import CallGuard

IncomingHandler = Callable[[IncomingMessage], Awaitable[None]]
OwnerActivityHandler = Callable[[OwnerActivity], Awaitable[None]]
OwnerReadHandler = Callable[[OwnerRead], Awaitable[None]]
OwnerPresenceHandler = Callable[[OwnerPresence], Awaitable[None]]
# The owner's text from another device -> whether it was a command (handled: not activity)
OwnerCommandHandler = Callable[[OwnerText], Awaitable[bool]]
EditHandler = Callable[[str, int, int, str], Awaitable[None]]  # account, chat, message id, text
DeleteHandler = Callable[[str, int | None, list[int]], Awaitable[None]]
AuthorizedHandler = Callable[[str, TelegramUser], Awaitable[None]]  # account, who
# A bot's button pressed: account, the presser's user id, the button's data -> the answer
# (a toast) when the press was handled, None to take it in as the user's turn
ButtonHandler = Callable[[str, int, bytes], Awaitable[str | None]]

SENT_IDS_REMEMBERED = 2048


@dataclass
class Handlers:
    incoming: IncomingHandler | None = None
    owner_activity: OwnerActivityHandler | None = None
    owner_read: OwnerReadHandler | None = None
    owner_presence: OwnerPresenceHandler | None = None
    owner_command: OwnerCommandHandler | None = None
    edited: EditHandler | None = None
    owner_edited: EditHandler | None = None  # the owner edited a message from another device
    deleted: DeleteHandler | None = None
    authorized: AuthorizedHandler | None = None
    button: ButtonHandler | None = None  # a bot's button pressed (drafts' Send / Edit / Skip)


@dataclass
class PendingLogin:
    phone: str
    phone_code_hash: str
    awaiting_password: bool = False


@dataclass
class InFlight:
    """Sends in progress per chat, so our own outgoing echo is not mistaken for the owner."""

    counts: dict[int, int] = field(default_factory=dict)
    done: dict[int, asyncio.Event] = field(default_factory=dict)

    @contextlib.contextmanager
    def sending(self, chat_id: int) -> Iterator[None]:
        """One send to the chat is in flight for the block; `done[chat_id]` is set when the
        chat's last one ends."""
        self.counts[chat_id] = self.counts.get(chat_id, 0) + 1
        self.done.setdefault(chat_id, asyncio.Event())
        try:
            yield
        finally:
            self.counts[chat_id] -= 1
            if not self.counts[chat_id]:
                del self.counts[chat_id]
                self.done.pop(chat_id).set()


class AccountBase(abc.ABC):
    """A logged-in (or logging-in) personal account. One Telethon client, one DB session."""

    def __init__(
        self,
        name: str,
        settings: TelegramSettings,
        store: SessionStore,
        *,
        api_hash: str,
        receive_updates: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._settings = settings
        self._store = store
        self._api_hash = api_hash
        self._clock = clock
        self._client: TelegramClient | None = None
        self._session: DatabaseSession | None = None
        self._pending: PendingLogin | None = None
        self._me: TelegramUser | None = None
        self._handlers = Handlers()
        self._sent_ids: deque[int] = deque(maxlen=SENT_IDS_REMEMBERED)
        self._in_flight = InFlight()
        self._lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._closed = False  # close(): no start connects it again
        # False for the CLI: connect without taking in updates and leave the stored update
        # state where the daemon left it (so `twin run` catches up on what arrives meanwhile).
        self._receive_updates = receive_updates
        self.link: LinkState = new_link(settings, name)  # the real link state, across clients
        self._authorization_known = False  # set once the stored session has been checked
        self._expected = False  # it holds a stored session (see expect_link)
        # dialog id -> its newest message id when the sweep last checked it
        self._checked_top: dict[int, int] = {}
        # chat id -> the highest message id this daemon marked read there: a read receipt up to
        # it is the daemon's own (echoed by a catch-up), never the owner's
        self._own_reads: dict[int, int] = {}
        self._guard: CallGuard | None = None  # the account's safety governor (guard.py)

    def guard_with(self, guard: CallGuard | None) -> None:
        """Every call of this account (of its current and later clients) asks `guard`."""
        self._guard = guard
        if self._client is not None:
            self._apply_guard(self._client)

    def _apply_guard(self, client: Any) -> None:
        client.guard = self._guard
        if self._guard is not None:
            client.flood_sleep_threshold = 0  # every FLOOD_WAIT reaches the guard

    @property
    def client(self) -> TelegramClient:
        if self._client is None:
            raise TelegramUnavailable("the Telegram client is not started")
        return self._client

    @property
    def is_bot(self) -> bool:
        """Logged in as a bot (by token): no dialogs, read marks, presence or Saved Messages."""
        return self._me is not None and self._me.bot

    @property
    def authorized(self) -> bool:
        return self._me is not None

    @property
    def me(self) -> TelegramUser | None:
        return self._me

    def require_authorized(self) -> None:
        if self._me is None:
            raise Unauthorized("the Telegram account is not logged in; log in first")

    @abc.abstractmethod
    async def input_peer(self, chat: int | str) -> Any:
        """A chat by id, "@username" or "+phone" as Telethon's input peer (sending.py)."""
