"""One Telegram account: the TelegramAccount class, composed like Telethon's client of one mixin
per concern. This module keeps the lifecycle (start, stop, status) and the handlers' wiring:

    base.py      AccountBase     the shared state, the Telethon client, the login check
    auth.py      AuthMethods     login by code (and 2FA password), logout
    updates.py   UpdateMethods   event handlers, intake of one message, the sweep
    sending.py   SendingMethods  input peers, exactly-once sends, typing, read receipts, media
    history.py   HistoryMethods  dialogs, private chats, history pages
    records.py   the records they return (CodeSent, TelegramUser, SendResult, Dialog, …)
    refusals.py  rpc_errors: Telethon's errors → twin.errors, around every request

Everything Telethon-specific about an account lives here and in its siblings; callers get domain
values (IncomingMessage, OwnerActivity, SendResult…) and domain errors (twin.errors).
"""

from __future__ import annotations

import asyncio
from typing import Any

from telethon import TelegramClient, events
from telethon.tl import types

from twin.adapters.telegram.auth import AuthMethods
from twin.adapters.telegram.base import (
    AuthorizedHandler,
    ButtonHandler,
    DeleteHandler,
    EditHandler,
    IncomingHandler,
    OwnerActivityHandler,
    OwnerCommandHandler,
    OwnerPresenceHandler,
    OwnerReadHandler,
)
from twin.adapters.telegram.client import build_client
from twin.adapters.telegram.history import HistoryMethods
from twin.adapters.telegram.link import LinkStatus
from twin.adapters.telegram.records import (
    CodeSent,
    Dialog,
    LoginResult,
    OwnPage,
    SendResult,
    TelegramUser,
)
from twin.adapters.telegram.sending import TYPING_ACTIONS, SendingMethods
from twin.adapters.telegram.session import DatabaseSession
from twin.adapters.telegram.updates import SERVICE_USER_ID, UpdateMethods
from twin.errors import TelegramUnavailable

__all__ = [
    "SERVICE_USER_ID",
    "TYPING_ACTIONS",
    "CodeSent",
    "Dialog",
    "LoginResult",
    "OwnPage",
    "SendResult",
    "TelegramAccount",
    "TelegramUser",
]


class TelegramAccount(AuthMethods, UpdateMethods, SendingMethods, HistoryMethods):
    """A logged-in (or logging-in) personal account. One Telethon client, one DB session.

    Its state and constructor are AccountBase's (base.py); the mixins give the rest."""

    # --- wiring ------------------------------------------------------------------------------
    def on_incoming(self, handler: IncomingHandler) -> None:
        self._handlers.incoming = handler

    def on_owner_activity(self, handler: OwnerActivityHandler) -> None:
        self._handlers.owner_activity = handler

    def on_owner_command(self, handler: OwnerCommandHandler) -> None:
        """`handler(text)` for each text the owner sends from another device (any chat, Saved
        Messages too) before it counts as activity; True: it was a command, handled."""
        self._handlers.owner_command = handler

    def on_owner_read(self, handler: OwnerReadHandler) -> None:
        self._handlers.owner_read = handler

    def on_owner_presence(self, handler: OwnerPresenceHandler) -> None:
        self._handlers.owner_presence = handler

    def on_edited(self, handler: EditHandler) -> None:
        self._handlers.edited = handler

    def on_owner_edited(self, handler: EditHandler) -> None:
        """`handler(account, peer, id, text)` when the owner edits an outgoing message from
        another device (the daemon never edits its own)."""
        self._handlers.owner_edited = handler

    def on_deleted(self, handler: DeleteHandler) -> None:
        self._handlers.deleted = handler

    def on_button(self, handler: ButtonHandler) -> None:
        """`handler(account, user id, data)` first, for a bot's button pressed: a text it
        returns answers the press and the press is not taken in as a message."""
        self._handlers.button = handler

    def on_authorized(self, handler: AuthorizedHandler) -> None:
        """`handler(account, user)` when the account is found or becomes logged in, before its
        session is flushed: whatever it records is never behind the stored session."""
        self._handlers.authorized = handler

    def expect_link(self) -> None:
        """This account holds a stored session: until it is checked, /ready counts on it."""
        self._expected = True

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> bool:
        """Connect; if the stored session is authorized, start receiving (with catch-up).
        Returns whether this call did the connecting.

        Safe to call concurrently (a login request racing the start-up connect): one start wins.
        """
        async with self._start_lock:
            if self._closed:
                raise TelegramUnavailable(f"account {self.name} is no longer served here")
            if self.running:
                return False
            await self._start()
            return True

    async def _start(self) -> None:
        if self._client is not None:
            self.link.closing()
            await self._client.disconnect()
        self._session = await DatabaseSession.open(
            self._store, self.name, keep_update_state=not self._receive_updates
        )
        self._client = self._new_client(self._session)
        try:
            await self._client.connect()
        except (ConnectionError, OSError) as exc:
            # auto_reconnect covers later drops; a failed first connect is retried by the caller.
            raise TelegramUnavailable(f"cannot connect to Telegram: {exc}") from exc
        if self._closed:  # closed while connecting: this client must not stay up
            await self._client.disconnect()
            raise TelegramUnavailable(f"account {self.name} is no longer served here")
        if await self._client.is_user_authorized():
            await self._authorized(await self._client.get_me())
        self._authorization_known = True

    def _new_client(self, session: DatabaseSession) -> TelegramClient:
        """A Telethon client on the session, with the account's event handlers.

        Every client gets the handlers: a client rebuilt after a logout, or after Telethon gave
        up reconnecting, must hear too."""
        client = build_client(
            self._settings,
            session,
            api_hash=self._api_hash,
            account=self.name,
            receive_updates=self._receive_updates,
            link=self.link,
        )
        self._apply_guard(client)
        client.add_event_handler(self._on_update, events.Raw)
        if self._receive_updates:
            client.add_event_handler(self._on_new_message, events.NewMessage())
            client.add_event_handler(self._on_edited, events.MessageEdited())
            client.add_event_handler(self._on_deleted, events.MessageDeleted())
            client.add_event_handler(self._on_callback, events.CallbackQuery())
            client.add_event_handler(self._on_read, events.MessageRead(inbox=True))
            client.add_event_handler(self._on_user_status, events.Raw(types.UpdateUserStatus))
        return client

    async def close(self) -> None:
        """Stop for good: a start under way ends disconnected and no later start connects
        (the account is served by another process now, or was forgotten)."""
        self._closed = True
        await self.stop()

    async def stop(self) -> None:
        if self._client is not None:
            self.link.closing()
            # disconnect() hands the update state (pts…) to the session: catch-up relies on it.
            await self._client.disconnect()
            self._client = None
        if self._session is not None:
            await self._session.flush()

    async def wait_stopped(self) -> BaseException | None:
        """Until the current client stops (Telethon gave up reconnecting, or it was stopped or
        replaced); what stopped it, if it said. Returns at once when there is no client."""
        client = self._client
        if client is None:
            return None
        try:
            await client.disconnected
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # Telethon's own reason for giving up
            return exc
        return None

    @property
    def logging_in(self) -> bool:
        """A login code was requested and the login is not complete yet."""
        return self._pending is not None

    @property
    def starting(self) -> bool:
        """A start is under way (connected, perhaps not yet known to be authorized)."""
        return self._start_lock.locked()

    @property
    def running(self) -> bool:
        """Telethon's "connected": the client was started and not stopped (it stays True while
        Telethon reconnects in the background, so it says nothing about the link)."""
        return self._client is not None and self._client.is_connected()

    @property
    def connected(self) -> bool:
        """Whether the link to Telegram is up right now (see link.py)."""
        return self.running and self.link.connected

    def link_status(self) -> LinkStatus:
        return self.link.status()

    @property
    def expects_link(self) -> bool:
        """Whether the daemon needs this account connected to be ready: it is logged in, or it
        may be (its stored session has not been checked yet, e.g. Telegram is down at start)."""
        return self._me is not None or (self._expected and not self._authorization_known)

    def status(self) -> dict[str, Any]:
        link = self.link.status()
        return {
            "account": self.name,
            "connected": self.connected,
            "since": link.since,
            "last_update_at": link.last_update_at,
            "reconnects": link.reconnects,
            "authorized": self.authorized,
            "user": self._me.public() if self._me else None,
            "pending_login": self._pending is not None,
        }
