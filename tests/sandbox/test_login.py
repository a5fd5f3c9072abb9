"""Login over real TCP with the stock Telethon client: sign-up, code, 2FA, saved sessions."""

from __future__ import annotations

import asyncio
import os
import types

import pytest
from telethon import errors, events
from telethon.network import authenticator

from twin.sandbox import crypto
from twin.sandbox.client import sign_in
from twin.sandbox.server import SandboxServer

from .fixtures import SandboxClients


async def test_two_users_sign_up_and_sign_in_by_code(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    # Alice signs up through auth.signUp; Bob's account is created by the test API.
    alice_client = await sandbox_clients.signed_in("+1 555 000 1", first_name="Alice")
    sandbox.create_user("15550002", "Bob", username="bob")
    bob_client = await sandbox_clients.signed_in("15550002")

    alice_me = await alice_client.get_me()
    bob_me = await bob_client.get_me()
    assert alice_me.first_name == "Alice" and alice_me.phone == "15550001"
    assert bob_me.username == "bob"
    assert alice_me.id != bob_me.id
    assert sandbox.user("15550001").id == alice_me.id

    # A second, fresh session signs in by code to the account created by sign-up.
    again = await sandbox_clients.signed_in("15550001")
    assert (await again.get_me()).id == alice_me.id


async def test_two_factor_password(sandbox: SandboxServer, sandbox_clients: SandboxClients) -> None:
    sandbox.create_user("15550003", "Carol", password="correct horse")
    client = sandbox_clients.new()
    await client.connect()
    await client.send_code_request("15550003")
    with pytest.raises(errors.SessionPasswordNeededError):
        await client.sign_in("15550003", sandbox.last_code("15550003"))
    with pytest.raises(errors.PasswordHashInvalidError):
        await client.sign_in(password="battery staple")
    assert not await client.is_user_authorized()
    me = await client.sign_in(password="correct horse")
    assert me.first_name == "Carol"
    assert await client.is_user_authorized()


async def test_helper_signs_in_with_password(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    sandbox.create_user("15550004", "Dave", password="pw")
    client = await sandbox_clients.signed_in("15550004", password="pw")
    assert (await client.get_me()).first_name == "Dave"


async def test_wrong_expired_code_and_bad_phone(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    sandbox.create_user("15550005", "Eve")
    client = sandbox_clients.new()
    await client.connect()
    await client.send_code_request("15550005")
    right = sandbox.last_code("15550005")
    wrong = f"{(int(right) + 1) % 100000:05d}"
    with pytest.raises(errors.PhoneCodeInvalidError):
        await client.sign_in("15550005", wrong)

    sandbox.expire_code("15550005")
    with pytest.raises(errors.PhoneCodeExpiredError):
        await client.sign_in("15550005", right)

    with pytest.raises(errors.PhoneNumberInvalidError):
        await client.send_code_request("123")
    assert not await client.is_user_authorized()


async def test_second_code_request_resends_a_new_code(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    # Telethon answers a second send_code_request for the same phone with auth.resendCode.
    sandbox.create_user("15550007", "Fay")
    client = sandbox_clients.new()
    await client.connect()
    first = await client.send_code_request("15550007")
    old = sandbox.last_code("15550007")
    again = await client.send_code_request("15550007")
    assert again.phone_code_hash == first.phone_code_hash
    new = sandbox.last_code("15550007")
    if new != old:  # the old code is replaced (a 1-in-100000 chance of drawing the same one)
        with pytest.raises(errors.PhoneCodeInvalidError):
            await client.sign_in("15550007", old)
    me = await client.sign_in("15550007", new)
    assert me.first_name == "Fay"


async def test_resend_after_expiry_sends_a_fresh_code(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    sandbox.create_user("15550008", "Gus")
    client = sandbox_clients.new()
    await client.connect()
    first = await client.send_code_request("15550008")
    sandbox.expire_code("15550008")
    # resendCode answers PHONE_CODE_EXPIRED; Telethon then sends a new code (a new login).
    again = await client.send_code_request("15550008")
    assert again.phone_code_hash != first.phone_code_hash
    me = await client.sign_in("15550008", sandbox.last_code("15550008"))
    assert me.first_name == "Gus"


async def test_unregistered_phone_needs_sign_up(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    client = sandbox_clients.new()
    await client.connect()
    with pytest.raises(errors.PhoneNumberUnoccupiedError):
        await sign_in(client, sandbox, "15550006")


async def test_code_is_delivered_to_other_sessions_by_777000(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    sandbox.create_user("15550007", "Frank")
    first = await sandbox_clients.signed_in("15550007")
    got: asyncio.Queue = asyncio.Queue()

    @first.on(events.NewMessage(incoming=True, from_users=777000))
    async def on_code(event: events.NewMessage.Event) -> None:
        await got.put(event.raw_text)

    second = sandbox_clients.new()
    await second.connect()
    await second.send_code_request("15550007")
    text = await asyncio.wait_for(got.get(), 5)
    code = sandbox.last_code("15550007")
    assert f"Login code: {code}." in text
    me = await second.sign_in("15550007", code)
    assert me.first_name == "Frank"


async def test_saved_string_session_keeps_authorization(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    sandbox.create_user("15550008", "Grace")
    client = await sandbox_clients.signed_in("15550008")
    saved = client.session.save()
    me = await client.get_me()
    await client.disconnect()

    restored = sandbox_clients.new(saved)
    await restored.connect()
    assert await restored.is_user_authorized()
    assert (await restored.get_me()).id == me.id

    await restored.log_out()
    after_logout = sandbox_clients.new(saved)
    await after_logout.connect()
    assert not await after_logout.is_user_authorized()


def _secret_with_a_short_key() -> bytes:
    """A client secret `b` whose shared key `g_a^b` has a zero top byte (about 1 in 256)."""
    _, g_a = crypto.dh_server_secret()
    while True:
        b = int.from_bytes(os.urandom(40), "big")
        g_b = pow(crypto.DH_G, b, crypto.DH_PRIME)
        fits = crypto.DH_SAFETY <= g_b <= crypto.DH_PRIME - crypto.DH_SAFETY
        if fits and pow(g_a, b, crypto.DH_PRIME) < 1 << (8 * 255):
            return b.to_bytes(256, "big")


async def test_a_key_with_a_zero_top_byte_is_redone_and_sessions_round_trip(
    sandbox: SandboxServer, sandbox_clients: SandboxClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Telegram's auth key is the 256-byte big-endian g^ab; Telethon keeps it minimal (255 bytes
    # when the top byte is 0), fails the new_nonce_hash1 check and makes a new key. Accepting
    # the short key instead left sessions that StringSession cannot restore (it pads at the end).
    crafted = [_secret_with_a_short_key()]

    def urandom(n: int) -> bytes:
        return crafted.pop() if n == 256 and crafted else os.urandom(n)

    monkeypatch.setattr(authenticator, "os", types.SimpleNamespace(urandom=urandom))
    sandbox.create_user("15550010", "Ivy")
    client = await sandbox_clients.signed_in("15550010", retry_delay=0)
    assert not crafted  # the first handshake used the short key
    assert len(client.session.auth_key.key) == 256
    saved = client.session.save()
    await client.disconnect()

    restored = sandbox_clients.new(saved)
    await restored.connect()
    assert await restored.is_user_authorized()


async def test_bot_signs_in_with_token(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    bot = sandbox.create_user("15550009", "Helper Bot", username="helper_bot", bot=True)
    client = sandbox_clients.new()
    await client.connect()
    me = await client.sign_in(bot_token=bot.bot_token)
    assert me.bot and me.username == "helper_bot"
