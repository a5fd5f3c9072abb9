"""One Telegram account: connection, login by code, intake of updates, sending primitives.

Everything Telethon-specific about an account lives here and in its siblings; callers get domain
values (IncomingMessage, OwnerActivity, SendResult…) and domain errors (twin.errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import TelegramClient, errors, events, functions, types, utils

from twin.adapters.telegram import mapping
from twin.adapters.telegram.client import build_client, new_link
from twin.adapters.telegram.link import LinkState, LinkStatus
from twin.adapters.telegram.refusals import rpc_errors
from twin.adapters.telegram.session import DatabaseSession, SessionStore
from twin.config import TelegramSettings
from twin.domain.models import ChatKind, IncomingMessage, OwnerActivity
from twin.errors import (
    AdapterError,
    Conflict,
    InvalidInput,
    TelegramUnavailable,
    TwinError,
    Unauthorized,
)
from twin.logs import redactor

log = logging.getLogger("twin.telegram")

IncomingHandler = Callable[[IncomingMessage], Awaitable[None]]
OwnerActivityHandler = Callable[[OwnerActivity], Awaitable[None]]
EditHandler = Callable[[str, int, int, str], Awaitable[None]]  # account, chat, message id, text
DeleteHandler = Callable[[str, int | None, list[int]], Awaitable[None]]
AuthorizedHandler = Callable[[str, "TelegramUser"], Awaitable[None]]  # account, who

_SENT_IDS_REMEMBERED = 2048
# Telegram's service notifications (login codes, security alerts): never a conversation.
SERVICE_USER_ID = 777000
_SWEEP_DIALOGS = 100
_SWEEP_MESSAGES_PER_CHAT = 50
_SWEEP_READ_MESSAGES = 20  # newest messages compared in a private chat with nothing unread

_CODE_TYPES = {
    types.auth.SentCodeTypeApp: "app",
    types.auth.SentCodeTypeSms: "sms",
    types.auth.SentCodeTypeCall: "call",
    types.auth.SentCodeTypeFlashCall: "flash_call",
    types.auth.SentCodeTypeMissedCall: "missed_call",
    types.auth.SentCodeTypeEmailCode: "email",
    types.auth.SentCodeTypeFragmentSms: "fragment_sms",
}

_PASSWORD_NEEDED = object()  # what _sign_in returns when a 2FA password must follow

TYPING_ACTIONS = {
    "typing": types.SendMessageTypingAction,
    "record_voice": types.SendMessageRecordAudioAction,
    "cancel": types.SendMessageCancelAction,
}


@dataclass(frozen=True)
class CodeSent:
    phone_code_hash: str
    type: str
    timeout: int | None


@dataclass(frozen=True)
class TelegramUser:
    id: int
    name: str
    username: str | None
    phone: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "phone": mapping.mask_phone(self.phone),
        }


@dataclass(frozen=True)
class OwnPage:
    """A page of history as `twin style build` reads it."""

    own: list[tuple[int, str, datetime]]  # the owner's messages: id, text, date
    scanned: int  # messages in the page
    next_before: int | None  # the next page's cursor; None: the history ends here


@dataclass(frozen=True)
class LoginResult:
    status: str  # "authorized" | "password_required"
    user: TelegramUser | None = None
    hint: str | None = None


@dataclass(frozen=True)
class SendResult:
    message_id: int | None
    duplicate: bool = False  # Telegram already had this random_id: sent before a crash


@dataclass(frozen=True)
class Dialog:
    id: int
    title: str
    username: str | None
    kind: str
    unread_count: int
    last_message: str | None
    last_message_at: datetime | None


@dataclass
class _Handlers:
    incoming: IncomingHandler | None = None
    owner_activity: OwnerActivityHandler | None = None
    edited: EditHandler | None = None
    deleted: DeleteHandler | None = None
    authorized: AuthorizedHandler | None = None


@dataclass
class _PendingLogin:
    phone: str
    phone_code_hash: str
    awaiting_password: bool = False


@dataclass
class _InFlight:
    """Sends in progress per chat, so our own outgoing echo is not mistaken for the owner."""

    counts: dict[int, int] = field(default_factory=dict)
    done: dict[int, asyncio.Event] = field(default_factory=dict)


class TelegramAccount:
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
        self._pending: _PendingLogin | None = None
        self._me: TelegramUser | None = None
        self._handlers = _Handlers()
        self._sent_ids: deque[int] = deque(maxlen=_SENT_IDS_REMEMBERED)
        self._in_flight = _InFlight()
        self._lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        # False for the CLI: connect without taking in updates and leave the stored update
        # state where the daemon left it (so `twin run` catches up on what arrives meanwhile).
        self._receive_updates = receive_updates
        self.link: LinkState = new_link(settings, name)  # the real link state, across clients
        self._authorization_known = False  # set once the stored session has been checked
        self._expected = False  # it holds a stored session (see expect_link)
        # dialog id -> its newest message id when the sweep last checked it
        self._checked_top: dict[int, int] = {}

    # --- wiring ------------------------------------------------------------------------------
    def on_incoming(self, handler: IncomingHandler) -> None:
        self._handlers.incoming = handler

    def on_owner_activity(self, handler: OwnerActivityHandler) -> None:
        self._handlers.owner_activity = handler

    def on_edited(self, handler: EditHandler) -> None:
        self._handlers.edited = handler

    def on_deleted(self, handler: DeleteHandler) -> None:
        self._handlers.deleted = handler

    def on_authorized(self, handler: AuthorizedHandler) -> None:
        """`handler(account, user)` when the account is found or becomes logged in, before its
        session is flushed: whatever it records is never behind the stored session."""
        self._handlers.authorized = handler

    def expect_link(self) -> None:
        """This account holds a stored session: until it is checked, /ready counts on it."""
        self._expected = True

    @property
    def client(self) -> TelegramClient:
        if self._client is None:
            raise TelegramUnavailable("the Telegram client is not started")
        return self._client

    @property
    def authorized(self) -> bool:
        return self._me is not None

    @property
    def me(self) -> TelegramUser | None:
        return self._me

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> bool:
        """Connect; if the stored session is authorized, start receiving (with catch-up).
        Returns whether this call did the connecting.

        Safe to call concurrently (a login request racing the start-up connect): one start wins.
        """
        async with self._start_lock:
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
        self._client = build_client(
            self._settings,
            self._session,
            api_hash=self._api_hash,
            account=self.name,
            receive_updates=self._receive_updates,
            link=self.link,
        )
        self._client.add_event_handler(self._on_update, events.Raw)
        if self._receive_updates:
            # Every client gets the handlers: a client rebuilt after a logout, or after Telethon
            # gave up reconnecting, must hear too.
            self._client.add_event_handler(self._on_new_message, events.NewMessage())
            self._client.add_event_handler(self._on_edited, events.MessageEdited())
            self._client.add_event_handler(self._on_deleted, events.MessageDeleted())
        try:
            await self._client.connect()
        except (ConnectionError, OSError) as exc:
            # auto_reconnect covers later drops; a failed first connect is retried by the caller.
            raise TelegramUnavailable(f"cannot connect to Telegram: {exc}") from exc
        if await self._client.is_user_authorized():
            await self._authorized(await self._client.get_me())
        self._authorization_known = True

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

    async def _on_update(self, update: Any) -> None:
        self.link.update_received()

    async def _authorized(self, user: Any) -> None:
        self._me = TelegramUser(
            id=user.id,
            name=mapping.display_name(user),
            username=user.username,
            phone=user.phone,
        )
        self._pending = None
        if self._handlers.authorized is not None:
            await self._handlers.authorized(self.name, self._me)
        # Persist at once: a crash before Telethon's periodic save must not lose the login.
        if self._session is not None:
            await self._session.flush()
        log.info("account %s authorized as user %s", self.name, self._me.id)

    # --- login -------------------------------------------------------------------------------
    async def request_code(self, phone: str) -> CodeSent:
        digits = mapping.normalize_phone(phone)
        if not 7 <= len(digits) <= 15:
            raise InvalidInput("phone", "a phone number has 7 to 15 digits, in international form")
        async with self._lock:
            with rpc_errors(self.name):
                sent = await self.client.send_code_request("+" + digits)
            # A second request for the same phone replaces the first pending login.
            self._pending = _PendingLogin(phone=digits, phone_code_hash=sent.phone_code_hash)
            return CodeSent(
                phone_code_hash=sent.phone_code_hash,
                type=_CODE_TYPES.get(type(sent.type), "unknown"),
                timeout=sent.timeout,
            )

    async def verify_code(
        self, phone: str, code: str | None, password: str | None = None
    ) -> LoginResult:
        """Complete a login: the code, then (for 2FA accounts) the password, in one or two calls."""
        redactor.add(code, password)
        digits = mapping.normalize_phone(phone)
        async with self._lock:
            pending = self._pending
            if pending is None or pending.phone != digits:
                raise Conflict("no login is pending for this phone; request a code first")
            with rpc_errors(self.name, passthrough=(TwinError,)):
                user = await self._sign_in(pending, code, password)
                if user is _PASSWORD_NEEDED:
                    return LoginResult("password_required", hint=await self._password_hint())
            await self._authorized(user)
            return LoginResult("authorized", user=self._me)

    async def submit_password(self, password: str) -> LoginResult:
        """The second step of a 2FA login (POST /auth/password)."""
        pending = self._pending
        if pending is None or not pending.awaiting_password:
            raise Conflict("no login is waiting for a password")
        return await self.verify_code(pending.phone, None, password)

    async def _sign_in(self, pending: _PendingLogin, code: str | None, password: str | None) -> Any:
        """The signed-in user; `_PASSWORD_NEEDED` when 2FA is on and no password came yet."""
        if pending.awaiting_password:
            return await self._sign_in_password(password)
        if not code:
            raise InvalidInput("code", "the login code is required")
        try:
            return await self.client.sign_in(
                phone="+" + pending.phone, code=code, phone_code_hash=pending.phone_code_hash
            )
        except errors.SessionPasswordNeededError:
            pending.awaiting_password = True
            if not password:
                return _PASSWORD_NEEDED
            return await self._sign_in_password(password)

    async def _sign_in_password(self, password: str | None) -> Any:
        if not password:
            raise InvalidInput("password", "two-step verification is on: a password is required")
        return await self.client.sign_in(password=password)

    async def _password_hint(self) -> str | None:
        try:
            info = await self.client(functions.account.GetPasswordRequest())
        except errors.RPCError:
            return None
        return info.hint or None

    async def logout(self) -> None:
        """Log out of Telegram (the authorization ends there), disconnect and forget the
        session. The next login builds a new client, with its own handlers."""
        async with self._lock:
            if self._me is None:
                raise Unauthorized("the Telegram account is not logged in")
            with rpc_errors(self.name):
                # Not client.log_out(): it would hand our session's async delete() to
                # Telethon's experimental async-session path, and we erase it ourselves.
                await self.client(functions.auth.LogOutRequest())
            self.link.closing()  # logged out: what follows is no outage
            client, session = self._client, self._session
            self._me = None
            self._pending = None
            self._client = None
            self._session = None
            if client is not None:
                await client.disconnect()
            if session is not None:
                await session.erase()
            log.info("account %s logged out", self.name)

    def require_authorized(self) -> None:
        if self._me is None:
            raise Unauthorized("the Telegram account is not logged in; log in first")

    # --- intake ------------------------------------------------------------------------------
    async def _on_new_message(self, event: events.NewMessage.Event) -> None:
        try:
            if event.message.out:
                await self._handle_outgoing(event.message)
            else:
                await self.take_in(event.message)
        except Exception:
            # One bad update must never stop the receive loop.
            log.exception("account %s: failed to handle message %s", self.name, event.message.id)

    async def take_in(self, message: Any) -> bool:
        """Map and hand over one received message; False if it is not for the twin."""
        handler = self._handlers.incoming
        if handler is None or self._me is None:
            return False
        if message.date < self._clock() - timedelta(seconds=self._settings.max_catch_up_age):
            log.debug("account %s: skipping stale message %s", self.name, message.id)
            return False
        chat_id = utils.get_peer_id(message.peer_id)
        if chat_id == SERVICE_USER_ID:
            return False
        chat = await self._chat_entity(message)
        kind = mapping.chat_kind(chat, chat_id=chat_id, owner_id=self._me.id)
        if kind in (ChatKind.CHANNEL, ChatKind.SAVED):
            return False
        replies_to_owner = False
        if kind in (ChatKind.GROUP, ChatKind.SUPERGROUP):
            replies_to_owner = await self._replies_to_owner(message)
            if not (message.mentioned or replies_to_owner):
                return False  # group chatter not addressed to the owner is not ours to store
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
        if self._me is not None and chat_id == self._me.id:
            return  # Saved Messages: notes to self are not a conversation
        done = self._in_flight.done.get(chat_id)
        if done is not None:
            # Our own send may echo back before send_text() learned its id: wait for it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=30)
        if message.id in self._sent_ids:
            return
        handler = self._handlers.owner_activity
        if handler is not None:
            await handler(mapping.to_owner_activity(self.name, message))

    async def _on_edited(self, event: events.MessageEdited.Event) -> None:
        handler = self._handlers.edited
        if handler is None or event.message.out:
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

    async def sweep(self, is_recorded: Callable[[int, list[int]], Awaitable[set[int]]]) -> int:
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
        if self._me is None:
            return 0
        taken = 0
        cutoff = self._clock() - timedelta(seconds=self._settings.max_catch_up_age)
        with rpc_errors(self.name):
            dialogs = await self.client.get_dialogs(limit=_SWEEP_DIALOGS)
        for dialog in dialogs:
            last = dialog.message
            if last is None or last.date < cutoff or (dialog.is_channel and not dialog.is_group):
                continue
            if self._checked_top.get(dialog.id) == last.id:
                continue  # nothing new since this dialog was checked
            unread = min(dialog.unread_count, _SWEEP_MESSAGES_PER_CHAT)
            if dialog.is_user:
                limit = max(_SWEEP_READ_MESSAGES, unread)
            elif unread > 0:
                limit = unread
            else:
                continue
            try:
                with rpc_errors(self.name):
                    messages = await self.client.get_messages(dialog.input_entity, limit=limit)
            except AdapterError as error:
                if error.transient:
                    raise
                log.info("account %s: sweep skips chat %s: %s", self.name, dialog.id, error)
                continue
            recent = [m for m in messages if m.date >= cutoff]
            known = await is_recorded(dialog.id, [m.id for m in recent]) if recent else set()
            missed = [m for m in recent if not m.out and m.id not in known]
            if not missed:
                self._checked_top[dialog.id] = last.id
                continue
            oldest = min(m.id for m in missed)
            owner = [
                m
                for m in recent
                if m.out and m.id > oldest and m.id not in known and m.id not in self._sent_ids
            ]
            for message in sorted([*missed, *owner], key=lambda m: m.id):  # as they happened
                if message.out:
                    await self._handle_outgoing(message)
                elif await self.take_in(message):
                    taken += 1
            self._checked_top[dialog.id] = last.id
        if taken:
            log.info("account %s: sweep took in %d missed message(s)", self.name, taken)
        return taken

    # --- sending -----------------------------------------------------------------------------
    async def input_peer(self, chat: int | str) -> Any:
        """A chat by id, "@username" or "+phone" as Telethon's input peer."""
        self.require_authorized()
        if isinstance(chat, str) and chat.startswith("+"):
            chat = "+" + mapping.normalize_phone(chat)
        with rpc_errors(self.name):
            peer = await self._cached_input_peer(chat)
            if peer is None and isinstance(chat, int):
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
        flight = self._in_flight
        flight.counts[chat_id] = flight.counts.get(chat_id, 0) + 1
        flight.done.setdefault(chat_id, asyncio.Event())
        try:
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
        finally:
            flight.counts[chat_id] -= 1
            if not flight.counts[chat_id]:
                del flight.counts[chat_id]
                flight.done.pop(chat_id).set()

    async def send_text(
        self, chat: int | str, text: str, *, random_id: int, reply_to: int | None = None
    ) -> SendResult:
        """Send `text` with a random_id the caller persisted first (exactly-once across crashes)."""
        peer = await self.input_peer(chat)
        request = functions.messages.SendMessageRequest(
            peer=peer,
            message=text,
            random_id=random_id,
            no_webpage=True,
            reply_to=types.InputReplyToMessage(reply_to_msg_id=reply_to) if reply_to else None,
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
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            await self.client.send_read_acknowledge(peer, max_id=max_id)

    async def private_chat_ids(self, limit: int = 500) -> list[int]:
        """Private chats with people (no bots, no Saved Messages), most recent first."""
        self.require_authorized()
        with rpc_errors(self.name):
            found = await self.client.get_dialogs(limit=limit)
        return [
            d.id
            for d in found
            if d.is_user
            and not getattr(d.entity, "bot", False)
            and not getattr(d.entity, "is_self", False)
            and d.id != SERVICE_USER_ID
        ]

    async def history_size(self, chat: int) -> int:
        """How many messages the chat's history holds (one request, no message read)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            found = await self.client.get_messages(peer, limit=0)
        return int(found.total or 0)

    async def own_messages(self, chat: int, *, before_id: int = 0, limit: int = 100) -> OwnPage:
        """One page of history older than `before_id`: the owner's own messages in it (newest
        first; text may be empty for media), how many messages the page held and the cursor
        of the next page (None at the end)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            # Plain history, filtered here: works everywhere messages.search may not.
            page = await self.client.get_messages(peer, limit=limit, offset_id=before_id)
        own = [(m.id, m.message or "", m.date) for m in page if m.out]
        return OwnPage(own, len(page), page[-1].id if len(page) == limit else None)

    async def dialogs(self, limit: int, offset: int = 0) -> list[Dialog]:
        self.require_authorized()
        with rpc_errors(self.name):
            found = await self.client.get_dialogs(limit=limit + offset)
        result = []
        for dialog in found[offset : offset + limit]:
            message = dialog.message
            kind = mapping.chat_kind(
                dialog.entity, chat_id=dialog.id, owner_id=self._me.id if self._me else None
            )
            result.append(
                Dialog(
                    id=dialog.id,
                    title=dialog.name or mapping.display_name(dialog.entity),
                    username=getattr(dialog.entity, "username", None),
                    kind=kind.value,
                    unread_count=dialog.unread_count,
                    last_message=_preview(message),
                    last_message_at=getattr(message, "date", None),
                )
            )
        return result


def _preview(message: Any, length: int = 100) -> str | None:
    if message is None:
        return None
    text = getattr(message, "message", "") or ""
    if not text:
        kind, _ = mapping.media_kind(message)
        return f"[{kind.value}]"
    return text if len(text) <= length else text[: length - 1] + "…"


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
