"""`SandboxServer`: the asyncio TCP server plus the test API around the sandbox world.

Why this shape: tests and the standalone CLI need one object to start/stop, to point clients
at (`port`, `dc_id`, `public_key_pem`), to set up fixtures (accounts, contacts, groups, codes),
to inject faults and to assert on server-side history. Protocol work is delegated to
connection.py, API semantics to the api_*.py handlers and state.py.

Usage::

    server = SandboxServer()
    await server.start()                 # 127.0.0.1, ephemeral port
    alice = server.create_user("15550001", "Alice")
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from telethon.crypto import AuthKey
from telethon.tl import types
from telethon.tl.tlobject import TLObject

from . import (  # noqa: F401  (registers handlers)
    api_auth,
    api_bots,
    api_files,
    api_messages,
    api_updates,
    api_users,
)
from .connection import Connection
from .crypto import ServerKey, default_server_key
from .faults import Faults
from .models import StatusUpdate
from .state import Account, Authorization, Group, RpcFailure, World, peer_key_of
from .tl import Clock, method_label

log = logging.getLogger("twin.sandbox")

UserRef = Account | int | str  # an Account, a user id, a phone or "@username"


class SandboxServer:
    """A Telegram-like MTProto 2.0 server for stock Telethon clients on loopback."""

    def __init__(
        self,
        *,
        dc_id: int = 2,
        key: ServerKey | None = None,
        fixed_code: str | None = None,
        code_ttl: float = 300.0,
        state_path: str | Path | None = None,
    ) -> None:
        self.dc_id = dc_id
        self.clock = Clock()
        self.world = World(self.clock, dc_id=dc_id, code_ttl=code_ttl)
        self.world.fixed_code = fixed_code
        self.state_path = Path(state_path) if state_path else None
        stored_key = None
        if self.state_path and self.state_path.exists():
            stored_key = self._load_state(self.state_path)
        self.key = key or stored_key or default_server_key()
        self.faults = Faults()
        self.host = "127.0.0.1"
        self.port = 0
        self.connections: set[Connection] = set()
        self.internal_errors: list[str] = []
        self.client_errors: list[str] = []
        self.unsupported: list[str] = []
        self.calls: Counter[str] = Counter()
        #: When each call arrived (loop time), by method: tests check that waits were kept.
        self.call_times: dict[str, list[float]] = {}
        #: Every account.updateStatus, in order (which session made its user look online).
        self.status_updates: list[StatusUpdate] = []
        self.bad_msg_notifications: Counter[int] = Counter()  # by error code
        #: CPU-ish time spent handling frames (decrypt, handlers, pushes); for benchmarks.
        self.busy_seconds = 0.0
        #: Push private text messages as UpdateShortMessage (no sender entity attached, as
        #: Telegram often does) instead of Updates with users; exercises the client's
        #: entity-cache path.
        self.short_updates = False
        #: Called with (phone, code) whenever a login code is issued (the CLI prints it).
        self.on_code: Callable[[str, str], None] | None = None
        self._server: asyncio.base_events.Server | None = None
        #: Connections accepted so far (a paused server accepts none: clients are refused).
        self.accepted = 0
        self.paused = False
        self._tasks: set[asyncio.Task] = set()
        self._waiters: list[asyncio.Future] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
        if self._server is not None:
            raise RuntimeError("sandbox server already started")
        self._server = await asyncio.start_server(self._on_client, host, port)
        sockname = self._server.sockets[0].getsockname()
        self.host = "127.0.0.1" if host in ("0.0.0.0", "", None) else host
        self.port = sockname[1]
        log.info("sandbox MTProto server on %s:%d (dc %d)", self.host, self.port, self.dc_id)
        return self

    async def stop(self) -> None:
        """Close the listener and every connection, then wait for their tasks."""
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()
        await self._server.wait_closed()
        self._server = None
        if self.state_path:
            self.save_state(self.state_path)

    async def __aenter__(self) -> SandboxServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        """"host:port", the form the daemon's config uses."""
        return f"{self.host}:{self.port}"

    @property
    def public_key_pem(self) -> str:
        return self.key.public_key_pem

    def write_public_key(self, path: str | Path) -> Path:
        """Write the PKCS#1 PEM clients must pass to `telethon.crypto.rsa.add_key`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.public_key_pem)
        return path

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self.accepted += 1
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        try:
            await conn.run()
        except asyncio.CancelledError:
            # The loop is shutting down without stop(). End quietly: on 3.11 the callback of
            # asyncio.start_server would otherwise log the cancellation as an error.
            conn.close()
        finally:
            self._tasks.discard(task)

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.notify_change()

    # -- bookkeeping used by connections ------------------------------------------------------

    def register_auth_key(self, auth_key: AuthKey, salt: int) -> Authorization:
        auth = Authorization(auth_key=auth_key, salt=salt)
        self.world.auths[auth_key.key_id] = auth
        return auth

    def note_client_error(self, conn: Connection, exc: Exception) -> None:
        log.info("sandbox: closing %r: %s", conn, exc)
        self.client_errors.append(f"{type(exc).__name__}: {exc}")

    def note_internal_error(self, message: str, exc: BaseException | None = None) -> None:
        log.error("sandbox internal error: %s", message, exc_info=exc)
        self.internal_errors.append(message)

    def count_call(self, request: TLObject) -> None:
        label = method_label(request)
        self.calls[label] += 1
        self.call_times.setdefault(label, []).append(asyncio.get_running_loop().time())

    def notify_change(self) -> None:
        """Wake every `wait_for` so it re-checks its predicate."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> object:
        """Wait until `predicate()` is truthy (re-checked after every state change)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("sandbox condition not reached in time")
            fut = loop.create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                continue

    # -- pushing updates --------------------------------------------------------------------

    def sessions_of(self, user_id: int) -> list[Connection]:
        """Connections that receive pushes for `user_id` right now."""
        return [
            c
            for c in self.connections
            if c.subscribed and not c.closed and c.user_id == user_id and c.session_id is not None
        ]

    def push(self, user_id: int, updates: TLObject, *, exclude: Connection | None = None) -> int:
        """Serialise once, push to each of the user's sessions; returns how many got it."""
        targets = [c for c in self.sessions_of(user_id) if c is not exclude]
        if not targets:
            return 0
        body = bytes(updates)
        for conn in targets:
            conn.push(body)
        return len(targets)

    def updates_for(self, user_id: int, updates: list) -> types.Updates:
        users, chats = self.world.entities_of(user_id, updates)
        return types.Updates(
            updates=updates, users=users, chats=chats, date=self.clock.date(), seq=0
        )

    def fan_out(self, updates_by_user: Iterable[tuple[int, TLObject]],
                exclude: Connection | None = None) -> None:
        """Push each (user id, Update) as an `Updates` built for that user's view."""
        for user_id, update in updates_by_user:
            short = self._short_form(update) if self.short_updates else None
            self.push(user_id, short or self.updates_for(user_id, [update]), exclude=exclude)

    @staticmethod
    def _short_form(update: TLObject) -> types.UpdateShortMessage | None:
        message = getattr(update, "message", None)
        if (
            not isinstance(update, types.UpdateNewMessage)
            or not isinstance(message, types.Message)
            or not isinstance(message.peer_id, types.PeerUser)
            or message.media is not None
        ):
            return None
        return types.UpdateShortMessage(
            id=message.id, user_id=message.peer_id.user_id, message=message.message,
            pts=update.pts, pts_count=update.pts_count, date=message.date, out=message.out,
            mentioned=message.mentioned, media_unread=message.media_unread,
            silent=message.silent, reply_to=message.reply_to, entities=message.entities,
        )

    # -- test API: accounts, contacts, groups -----------------------------------------------------

    def create_user(
        self,
        phone: str | int,
        first_name: str,
        last_name: str = "",
        username: str | None = None,
        password: str | None = None,
        bot: bool = False,
    ) -> Account:
        """Create an account; sign in with the code from `last_code(phone)` after send_code."""
        account = self.world.create_account(
            phone, first_name, last_name, username=username, password=password, bot=bot
        )
        self.notify_change()
        return account

    def user(self, ref: UserRef) -> Account:
        """An account by object, id, phone or "@username"."""
        return self.world.account(ref)

    def last_code(self, phone: str | int) -> str | None:
        """The last login code issued for `phone` (what the app would show)."""
        from .state import normalize_phone

        return self.world.last_codes.get(normalize_phone(phone))

    def expire_code(self, phone: str | int) -> None:
        """Make the pending code for `phone` expired (PHONE_CODE_EXPIRED on sign-in)."""
        from .state import normalize_phone

        login = self.world.codes.get(normalize_phone(phone))
        if login is not None:
            login.expires_at = 0.0

    def add_contact(
        self, owner: UserRef, contact: UserRef, first_name: str = "", last_name: str = ""
    ) -> None:
        """`owner` saves `contact` (User.contact for the owner; mutual if both ways)."""
        self.world.add_contact(self.user(owner), self.user(contact), first_name, last_name)
        self.notify_change()

    def create_group(self, title: str, members: Iterable[UserRef]) -> Group:
        """Create a basic group; the first member is the creator. Pushes the service message."""
        accounts = [self.user(m) for m in members]
        if not accounts:
            raise ValueError("a group needs at least one member")
        group = self.world.create_group(accounts[0], title, accounts[1:])
        copies = self.world.post_message(
            accounts[0], -group.id,
            action=types.MessageActionChatCreate(title=title, users=list(group.member_ids)),
        )
        self.fan_out((c.user_id, c.update) for c in copies)
        self.notify_change()
        return group

    def send_message(
        self,
        sender: UserRef,
        to: UserRef | Group,
        text: str,
        *,
        reply_to: int | None = None,
        entities: list | None = None,
    ) -> types.Message:
        """Send as `sender` without a client (bots, 777000, scripted contacts).

        `to` is a user ref or a Group; `reply_to` is a message id in the *sender's* box.
        Returns the sender's copy; every participant's sessions get an UpdateNewMessage.
        """
        account = self.user(sender)
        peer_key = -to.id if isinstance(to, Group) else self.user(to).id
        copies = self.world.post_message(
            account, peer_key, text=text, entities=entities, reply_to_local=reply_to
        )
        self.fan_out((c.user_id, c.update) for c in copies)
        self.notify_change()
        return copies[0].message

    def inject(self, user: UserRef, updates: TLObject | list) -> int:
        """Push arbitrary updates to a user's sessions as-is (no state change).

        Accepts a full `Updates`-type object, a single Update (wrapped in UpdateShort) or a
        list of Update objects (wrapped in Updates with entities). Returns sessions reached.
        """
        account = self.user(user)
        if isinstance(updates, list):
            updates = self.updates_for(account.id, updates)
        elif updates.SUBCLASS_OF_ID != 0x8AF52AAC:  # not an Updates: a single Update
            updates = types.UpdateShort(updates, self.clock.date())
        return self.push(account.id, updates)

    # -- test API: inspection -------------------------------------------------------------------

    def history(self, owner: UserRef, peer: UserRef | Group) -> list[types.TypeMessage]:
        """The owner's copy of a conversation, oldest first, as the server stores it."""
        account = self.user(owner)
        key = -peer.id if isinstance(peer, Group) else self.user(peer).id
        dialog = account.dialogs.get(key)
        return [account.messages[mid] for mid in dialog.message_ids] if dialog else []

    def messages_from(self, sender: UserRef, to: UserRef | Group) -> list[str]:
        """Texts `sender` sent to `to`, oldest first (handy for asserting on daemon replies)."""
        return [m.message for m in self.history(sender, to) if m.out and hasattr(m, "message")
                and not isinstance(m, types.MessageService)]

    def online_sessions(self, user: UserRef) -> int:
        return len(self.sessions_of(self.user(user).id))

    def authorizations(self, user: UserRef) -> int:
        """Authorization keys logged in as `user`, connected or not (auth.logOut unbinds one)."""
        user_id = self.user(user).id
        return sum(1 for auth in self.world.auths.values() if auth.user_id == user_id)

    # -- test API: faults -------------------------------------------------------------------------

    def disconnect_all(self) -> int:
        """Close every client connection (clients with auto_reconnect come back)."""
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        return len(conns)

    async def pause(self) -> None:
        """A server outage: close every connection and stop listening, so clients are refused
        ("connection refused") until `resume()`. Accounts, keys, messages and pts are kept, and
        `send_message` still works: what is sent meanwhile is there for getDifference later."""
        if self._server is None or self.paused:
            raise RuntimeError("the sandbox server is not running")
        self.paused = True
        await self.stop()
        self.notify_change()

    async def resume(self) -> None:
        """End a `pause()`: listen again on the same port."""
        if not self.paused:
            raise RuntimeError("the sandbox server is not paused")
        await self.start(self.host, self.port)
        self.paused = False
        self.notify_change()

    def disconnect_user(self, user: UserRef) -> int:
        """Close every connection authorized as `user`."""
        uid = self.user(user).id
        conns = [c for c in self.connections if c.user_id == uid]
        for conn in conns:
            conn.close()
        return len(conns)

    # -- persistence (optional) --------------------------------------------------------------------

    def save_state(self, path: str | Path) -> None:
        """Pickle accounts, auth keys, message boxes and the RSA key: a restarted server
        then accepts the same PEM and the same saved client sessions."""
        world = self.world
        clock, world.clock = world.clock, None
        try:
            blob = pickle.dumps({"world": world, "private_key_pem": self.key.private_pem()})
        finally:
            world.clock = clock
        Path(path).write_bytes(blob)

    def _load_state(self, path: Path) -> ServerKey:
        state = pickle.loads(path.read_bytes())
        world = state.get("world") if isinstance(state, dict) else None
        if not isinstance(world, World):
            raise TypeError(f"{path} does not hold sandbox state")
        world.clock = self.clock
        world.dc_id = self.dc_id
        world.fixed_code = self.world.fixed_code
        world.code_ttl = self.world.code_ttl
        self.world = world
        return ServerKey.from_private_pem(state["private_key_pem"])


__all__ = ["Group", "RpcFailure", "SandboxServer", "peer_key_of"]
