"""Build a Telethon client from `[telegram]` configuration.

Custom servers (the test suite's sandbox, Telegram's test DCs, self-hosted MTProto servers) are
reached the way Telethon supports without patching: register the server's RSA public key with
`telethon.crypto.rsa.add_key` and point the session at the server with `session.set_dc`.
"""

from __future__ import annotations

import logging

from telethon import TelegramClient
from telethon.crypto import rsa
from telethon.sessions.abstract import Session

from twin.config import TelegramSettings
from twin.errors import ConfigError

# Telegram's public test data-centre (dc 2); production is Telethon's default.
TEST_DC = (2, "149.154.167.40", 443)

_registered_keys: set[str] = set()

log = logging.getLogger("twin.telegram")


class TwinTelegramClient(TelegramClient):
    """Telethon's client, plus catch-up after an automatic reconnect.

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
) -> TelegramClient:
    """The account's client. `receive_updates=False` (the CLI): Telegram pushes nothing to it
    and it does not catch up, so it never consumes updates meant for the daemon."""
    _register_server_key(settings)
    point_session(settings, session)
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
        auto_reconnect=True,
        raise_last_call_error=True,
        catch_up=receive_updates,
        receive_updates=receive_updates,
        base_logger=logging.getLogger(f"telethon.{account}"),
    )
