"""The standalone CLI and state persistence, driven the way a daemon config would use them."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from telethon import TelegramClient
from telethon.crypto import rsa
from telethon.sessions import StringSession

from twin.sandbox.client import API_HASH, API_ID, make_client, signed_in_client
from twin.sandbox.server import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_cli_prints_port_and_codes_and_serves_a_config_style_client(tmp_path: Path) -> None:
    key_file = tmp_path / "sandbox.pem"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twin.sandbox", "--port", "0", "--key-out", str(key_file),
        "--fixed-code", "12345", "--user", "15550061:Kim:kim",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    client = None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert line.startswith("port=")
        port = int(line.removeprefix("port="))

        # What a daemon does from config: server="127.0.0.1:PORT", dc_id=2, PEM file path.
        host, _, port_text = f"127.0.0.1:{port}".partition(":")
        rsa.add_key(key_file.read_text(), old=False)
        session = StringSession()
        session.set_dc(2, host, int(port_text))
        client = TelegramClient(session, API_ID, API_HASH)
        await client.connect()
        await client.send_code_request("+15550061")
        code_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert code_line == "code phone=15550061 code=12345"
        me = await client.sign_in("+15550061", "12345")
        assert me.username == "kim"
    finally:
        if client is not None:
            await client.disconnect()
        if proc.returncode is None:
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_state_file_keeps_accounts_keys_and_history(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.state"
    first = SandboxServer(state_path=state)
    await first.start()
    try:
        first.create_user("15550071", "Lee", password="pw")
        client = await signed_in_client(first, "15550071", password="pw")
        await client.send_message("me", "note to self")
        saved = client.session.save()
        await client.disconnect()
    finally:
        await first.stop()

    second = SandboxServer(state_path=state)  # same key, same accounts, new port
    await second.start()
    try:
        assert second.public_key_pem == first.public_key_pem
        client = make_client(second, saved)
        await client.connect()
        try:
            assert await client.is_user_authorized()
            assert (await client.get_me()).first_name == "Lee"
            last = await client.get_messages("me", limit=1)
            assert last[0].message == "note to self"
        finally:
            await client.disconnect()
    finally:
        await second.stop()


async def test_pem_fixture_configures_a_plain_client(
    sandbox: SandboxServer, sandbox_pem: Path
) -> None:
    pem = await asyncio.to_thread(sandbox_pem.read_text)
    assert pem.startswith("-----BEGIN RSA PUBLIC KEY-----")
    sandbox.create_user("15550081", "Pat")
    rsa.add_key(pem, old=False)
    host, _, port = sandbox.address.rpartition(":")
    session = StringSession()
    session.set_dc(sandbox.dc_id, host, int(port))
    client = TelegramClient(session, API_ID, API_HASH)
    await client.connect()
    try:
        await client.send_code_request("15550081")
        me = await client.sign_in("15550081", sandbox.last_code("15550081"))
        assert me.first_name == "Pat"
    finally:
        await client.disconnect()
