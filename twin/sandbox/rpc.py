"""RPC dispatch: the handler registry, the per-call context and input-peer resolution.

Why: API handlers (the api_*.py modules) stay small synchronous functions of (call, request).
Keeping them synchronous is deliberate: a handler mutates state, pushes updates and returns
its result without yielding to the event loop, so the result and every push it caused reach
each connection in pts order, which is what Telethon's gap detection requires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from .state import Account, Authorization, RpcFailure, World

if TYPE_CHECKING:
    from .connection import Connection
    from .server import SandboxServer

Handler = Callable[["Call", Any], Any]

HANDLERS: dict[type, Handler] = {}
NO_AUTH: set[type] = set()


def handler(*request_types: type, auth: bool = True) -> Callable[[Handler], Handler]:
    """Register `fn` for the given Telethon request classes; `auth=False` allows anonymous use."""

    def register(fn: Handler) -> Handler:
        for request_type in request_types:
            if request_type in HANDLERS:
                raise RuntimeError(f"duplicate sandbox handler for {request_type.__name__}")
            HANDLERS[request_type] = fn
            if not auth:
                NO_AUTH.add(request_type)
        return fn

    return register


@dataclass
class Call:
    """Everything a handler may need for one request."""

    server: SandboxServer
    conn: Connection
    auth: Authorization
    msg_id: int

    @property
    def world(self) -> World:
        return self.server.world

    @property
    def user(self) -> Account | None:
        uid = self.auth.user_id
        return self.world.accounts.get(uid) if uid is not None else None

    def me(self) -> Account:
        user = self.user
        if user is None:
            raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
        return user

    def user_only(self) -> Account:
        """`me()` for the methods Telegram refuses to bots (dialogs, history, read marks,
        presence): BOT_METHOD_INVALID."""
        me = self.me()
        if me.bot:
            raise RpcFailure(400, "BOT_METHOD_INVALID")
        return me

    # -- pushing ----------------------------------------------------------------------------

    def updates_for(self, uid: int, updates: list) -> types.Updates:
        return self.server.updates_for(uid, updates)

    def deliver(self, uid: int, updates: list, *, to_requester: bool = False) -> None:
        """Push `updates` to every subscribed session of `uid` (not this connection)."""
        self.server.push(
            uid, self.updates_for(uid, updates), exclude=None if to_requester else self.conn
        )

    def deliver_short(self, uid: int, update: types.TypeUpdate) -> None:
        """Push a pts-less update (typing, status) as UpdateShort."""
        self.server.push(uid, types.UpdateShort(update, self.world.clock.date()), exclude=self.conn)

    # -- input resolution ---------------------------------------------------------------------

    def peer_key(self, peer: types.TypeInputPeer) -> int:
        """InputPeer -> marked peer key (user id > 0, -chat id < 0), checking access hashes."""
        me = self.me()
        world = self.world
        if isinstance(peer, types.InputPeerSelf):
            return me.id
        if isinstance(peer, types.InputPeerUser):
            account = world.accounts.get(peer.user_id)
            if account is None or account.access_hash != peer.access_hash:
                raise RpcFailure(400, "PEER_ID_INVALID")
            return account.id
        if isinstance(peer, types.InputPeerUserFromMessage):
            if peer.user_id not in world.accounts:
                raise RpcFailure(400, "PEER_ID_INVALID")
            return peer.user_id
        if isinstance(peer, types.InputPeerChat):
            group = world.groups.get(peer.chat_id)
            if group is None or me.id not in group.member_ids:
                message = "CHAT_ID_INVALID" if group is None else "CHAT_WRITE_FORBIDDEN"
                raise RpcFailure(400, message)
            return -peer.chat_id
        if isinstance(peer, types.InputPeerChannel | types.InputPeerChannelFromMessage):
            raise RpcFailure(400, "CHANNEL_INVALID")
        raise RpcFailure(400, "PEER_ID_INVALID")

    def input_user(self, user: object) -> Account:
        """InputUser (or InputPeerUser) -> Account, checking access hashes."""
        world = self.world
        if isinstance(user, types.InputUserSelf | types.InputPeerSelf):
            return self.me()
        if isinstance(user, types.InputUser | types.InputPeerUser):
            account = world.accounts.get(user.user_id)
            if account is None or account.access_hash != user.access_hash:
                raise RpcFailure(400, "USER_ID_INVALID")
            return account
        if (
            isinstance(user, types.InputUserFromMessage | types.InputPeerUserFromMessage)
            and user.user_id in world.accounts
        ):
            return world.accounts[user.user_id]
        raise RpcFailure(400, "USER_ID_INVALID")
