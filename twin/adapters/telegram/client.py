"""Build a Telethon client from `[telegram]` configuration.

Custom servers (the test suite's sandbox, Telegram's test DCs, self-hosted MTProto servers) are
reached the way Telethon supports without patching: register the server's RSA public key with
`telethon.crypto.rsa.add_key` and point the session at the server with `session.set_dc`.

The client's transport is `ConnectionTcpFull` (Telethon's default) extended to report to the
account's `LinkState` and to wait the reconnect backoff before each attempt (see link.py); the
`connection=` argument is Telethon's documented way to choose the transport class.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from telethon import TelegramClient
from telethon.crypto import rsa
from telethon.network.connection import ConnectionTcpFull
from telethon.sessions.abstract import Session
from telethon.tl.alltlobjects import LAYER

from twin.adapters.telegram.guard import GuardedCalls
from twin.adapters.telegram.link import LinkState, describe, install_log_filters
from twin.config import TelegramSettings
from twin.domain.backoff import Backoff
from twin.errors import ConfigError

# Telegram's public test data-centre (dc 2); production is Telethon's default.
TEST_DC = (2, "149.154.167.40", 443)

_registered_keys: set[str] = set()

log = logging.getLogger("twin.telegram")


class TwinTelegramClient(GuardedCalls, TelegramClient):
    """Telethon's client, plus catch-up after an automatic reconnect, and the account's safety
    governor around every call (guard.py).

    Telethon 1.x only sends get_me() after reconnecting by itself (catching up is a TODO in
    its updates mixin), so messages pushed while the connection was down would arrive only with
    the next gap or sweep. We extend that hook to also fetch the difference.
    """

    async def _handle_auto_reconnect(self) -> None:
        await super()._handle_auto_reconnect()
        try:
            await self.catch_up()
        except Exception as exc:  # the next sweep still finds what this missed
            log.warning("catch-up after reconnect failed: %s", exc)


class _TrackedConnection(ConnectionTcpFull):
    """Telethon's TCP-full transport, reporting to a `LinkState` (set per account by
    `tracked_connection`). Only the connection to the session's own data centre is the link:
    Telethon also opens connections to other DCs (file downloads) with the same class."""

    link: ClassVar[LinkState]
    main_dc: ClassVar[Callable[[], int]]
    # Telethon itself sleeps `retry_delay` (= the backoff base) after a failed attempt: the
    # connection waits only the rest of the drawn delay.
    telethon_waits: ClassVar[float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failure: BaseException | None = None

    def _is_link(self) -> bool:
        return bool(self._dc_id == self.main_dc())

    async def connect(self, timeout: float | None = None, ssl: Any = None) -> None:
        if not self._is_link():
            return await super().connect(timeout=timeout, ssl=ssl)
        wait = self.link.before_connect() - self.telethon_waits
        if wait > 0:
            await asyncio.sleep(wait)
        self._failure = None
        try:
            await super().connect(timeout=timeout, ssl=ssl)
        except Exception as exc:
            self.link.connect_failed(exc)
            raise

    async def recv(self) -> bytes:
        data: bytes = await super().recv()
        if not self.link.connected and self._is_link():
            self.link.received()
        return data

    async def _recv(self) -> bytes:
        try:
            return await super()._recv()
        except Exception as exc:  # remembered for the "link lost" reason
            self._failure = exc
            raise

    async def disconnect(self) -> None:
        if self._connected and self._is_link():
            self.link.lost(describe(self._failure) if self._failure else "connection closed")
        await super().disconnect()


def tracked_connection(
    link: LinkState, *, main_dc: Callable[[], int], telethon_waits: float
) -> type[ConnectionTcpFull]:
    """The transport class to give Telethon (`connection=`) for one account."""
    return type(
        "TrackedConnectionTcpFull",
        (_TrackedConnection,),
        {
            "link": link,
            "main_dc": staticmethod(main_dc),
            "telethon_waits": telethon_waits,
        },
    )


def new_link(settings: TelegramSettings, account: str) -> LinkState:
    """The link state of one account (kept across the clients it is rebuilt with)."""
    backoff = Backoff(settings.reconnect_backoff_base, settings.reconnect_backoff_max)
    return LinkState(account, backoff, layer=LAYER)


def _register_server_key(settings: TelegramSettings) -> None:
    path = settings.rsa_public_key_file
    if path is None:
        return
    try:
        pem = path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(
            [f"telegram.rsa_public_key_file: cannot read {path}: {exc.strerror}"]
        ) from None
    if pem not in _registered_keys:
        try:
            rsa.add_key(pem, old=False)
        except ValueError as exc:
            raise ConfigError(
                [f"telegram.rsa_public_key_file: not a PKCS#1 RSA key: {exc}"]
            ) from None
        _registered_keys.add(pem)


def point_session(settings: TelegramSettings, session: Session) -> None:
    """Aim a session at the configured server, unless it already holds an authorized key there."""
    if settings.server:
        host, _, port = settings.server.rpartition(":")
        target = (settings.dc_id, host, int(port))
    elif settings.test_mode:
        target = TEST_DC
    else:
        return  # Telethon's defaults are Telegram's production DCs
    current = (session.dc_id, session.server_address, session.port)
    if current != target:
        session.set_dc(*target)
        session.auth_key = None  # a key belongs to one server; a new server means a new key


def build_client(
    settings: TelegramSettings,
    session: Session,
    *,
    api_hash: str,
    account: str,
    receive_updates: bool = True,
    link: LinkState | None = None,
) -> TelegramClient:
    """The account's client. `receive_updates=False` (the CLI): Telegram pushes nothing to it
    and it does not catch up, so it never consumes updates meant for the daemon."""
    _register_server_key(settings)
    point_session(settings, session)
    link = link or new_link(settings, account)
    base_logger = f"telethon.{account}"
    install_log_filters(base_logger, link)
    return TwinTelegramClient(
        session,
        settings.api_id,
        api_hash,
        device_model=settings.device_model,
        system_version=settings.system_version,
        app_version=settings.app_version,
        lang_code=settings.lang_code,
        system_lang_code=settings.system_lang_code,
        flood_sleep_threshold=settings.flood_sleep_threshold,
        request_retries=settings.request_retries,
        connection_retries=settings.connection_retries,
        retry_delay=settings.reconnect_backoff_base,
        connection=tracked_connection(
            link, main_dc=lambda: session.dc_id, telethon_waits=settings.reconnect_backoff_base
        ),
        auto_reconnect=True,
        raise_last_call_error=True,
        catch_up=receive_updates,
        receive_updates=receive_updates,
        base_logger=logging.getLogger(base_logger),
    )
