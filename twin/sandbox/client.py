"""Helpers that point a stock `TelegramClient` at a sandbox server.

Why: every test (and tests/e2e) needs the same three steps done right: trust the sandbox's
RSA key (`telethon.crypto.rsa.add_key(pem, old=False)`), route the session to the sandbox
(`session.set_dc(dc_id, host, port)` *before* connect) and log in by code. Nothing in Telethon
is patched; these are all public APIs.

A daemon configured from files does the same with `server="127.0.0.1:PORT"`, `dc_id` and the
PEM written by `SandboxServer.write_public_key(path)`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from telethon import TelegramClient, errors, functions, types
from telethon.crypto import rsa
from telethon.sessions import MemorySession, Session, StringSession

if TYPE_CHECKING:
    from .server import SandboxServer

#: Any values work: the sandbox does not check api_id/api_hash.
API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"


def trust_server_key(pem: str | bytes) -> None:
    """Register the sandbox's public key with Telethon (idempotent)."""
    rsa.add_key(pem.encode() if isinstance(pem, str) else pem, old=False)


def make_client(
    server: SandboxServer, session: Session | str | None = None, **kwargs: Any
) -> TelegramClient:
    """A not-yet-connected TelegramClient routed to `server`.

    `session` may be a Session object, a StringSession string, or None (fresh in-memory
    session). Keyword arguments go to TelegramClient (e.g. catch_up=True,
    flood_sleep_threshold=0, request_retries=1, receive_updates=False).
    """
    trust_server_key(server.public_key_pem)
    if session is None:
        session = StringSession()
    elif isinstance(session, str):
        session = StringSession(session)
    session.set_dc(server.dc_id, server.host, server.port)
    kwargs.setdefault("device_model", "sandbox-test")
    kwargs.setdefault("system_version", "sandbox")
    kwargs.setdefault("app_version", "1.0")
    return TelegramClient(session, kwargs.pop("api_id", API_ID), kwargs.pop("api_hash", API_HASH),
                          **kwargs)


async def sign_in(
    client: TelegramClient,
    server: SandboxServer,
    phone: str,
    *,
    password: str | None = None,
    first_name: str | None = None,
    last_name: str = "",
) -> types.User:
    """Log a connected client in by code (reading the code from the server's test API).

    With `password`, completes 2FA. With `first_name` and an unregistered phone, signs up via
    auth.signUp (Telethon's own sign_up() helper refuses to), then reconnects so that
    connect() runs get_me() and initialises the update state like a normal login.
    """
    sent = await client.send_code_request(phone)
    code = server.last_code(phone)
    try:
        return await client.sign_in(phone, code)
    except errors.SessionPasswordNeededError:
        if password is None:
            raise
        return await client.sign_in(password=password)
    except errors.PhoneNumberUnoccupiedError:
        if first_name is None:
            raise
        await client(functions.auth.SignUpRequest(
            phone_number=phone, phone_code_hash=sent.phone_code_hash,
            first_name=first_name, last_name=last_name,
        ))
        await client.disconnect()
        await client.connect()
        me = await client.get_me()
        if me is None:
            raise RuntimeError("sign-up did not authorize the session") from None
        return me


async def signed_in_client(
    server: SandboxServer,
    phone: str,
    *,
    password: str | None = None,
    first_name: str | None = None,
    last_name: str = "",
    session: Session | str | None = None,
    **kwargs: Any,
) -> TelegramClient:
    """Connect a new client and sign it in by code (see `sign_in`); the caller disconnects."""
    client = make_client(server, session, **kwargs)
    await client.connect()
    try:
        if not await client.is_user_authorized():
            await sign_in(client, server, phone, password=password,
                          first_name=first_name, last_name=last_name)
    except BaseException:
        await client.disconnect()
        raise
    return client


# -- carrying update state across restarts -------------------------------------------------------


def session_snapshot(client: TelegramClient) -> str:
    """`StringSession.save()` plus what it leaves out, for a *disconnected* client.

    A StringSession string holds only the DC and the auth key. Telethon keeps the update state
    (pts/qts/date/seq) and the self id in the session object and writes them there on
    disconnect; without them a restarted client calls getState, starts from the *current*
    pts and never sees what arrived while it was offline (exactly like real Telegram).
    """
    session = client.session
    state = session.get_update_state(0)
    snapshot: dict[str, Any] = {"session": StringSession.save(session)}
    if state is not None:
        snapshot["state"] = [state.pts, state.qts, int(state.date.timestamp()), state.seq]
    try:
        self_row = session.get_input_entity(0)  # Telethon stores (0, self_id) here
        snapshot["self_id"] = self_row.access_hash
        own = session.get_input_entity(self_row.access_hash)
        snapshot["self_hash"] = own.access_hash
    except ValueError:
        pass
    return json.dumps(snapshot)


def restore_session(snapshot: str) -> StringSession:
    """Inverse of `session_snapshot`: a StringSession that resumes where the client stopped."""
    data = json.loads(snapshot)
    session = StringSession(data["session"])
    if "state" in data:
        pts, qts, date, seq = data["state"]
        session.set_update_state(0, types.updates.State(
            pts=pts, qts=qts, date=dt.datetime.fromtimestamp(date, dt.UTC), seq=seq, unread_count=0
        ))
    if "self_id" in data and "self_hash" in data:
        me = types.InputPeerUser(data["self_id"], data["self_hash"])
        session.process_entities(types.contacts.ResolvedPeer(
            None, [types.InputPeerUser(0, data["self_id"]), me], []
        ))
    return session


__all__ = [
    "API_HASH",
    "API_ID",
    "MemorySession",
    "StringSession",
    "make_client",
    "restore_session",
    "session_snapshot",
    "sign_in",
    "signed_in_client",
    "trust_server_key",
]
