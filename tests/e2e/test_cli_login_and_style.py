"""`twin login` with answers piped on stdin, then `twin run` on the saved session; and the
resumable `twin style build` over the owner's real message history."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import tomli_w
from telethon import functions

from tests.e2e.conftest import OWNER_PHONE, login
from tests.e2e.process import DaemonProcess
from twin import keys
from twin.sandbox.server import SandboxServer
from twin.services.style import ScanProgress, build_style, stored_profile


async def test_twin_login_reads_answers_from_stdin_and_the_session_persists(tmp_path: Path):
    server = SandboxServer(fixed_code="24680")
    await server.start()
    try:
        olga = server.create_user(
            OWNER_PHONE, "Olga", username="olga_owner", password="s3cret pass"
        )
        pem = server.write_public_key(tmp_path / "key.pem")
        config = {
            "telegram": {
                "api_id": 1,
                "server": f"127.0.0.1:{server.port}",
                "dc_id": server.dc_id,
                "rsa_public_key_file": str(pem),
            },
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        }
        (tmp_path / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
        env.update(TWIN_TELEGRAM__API_HASH="cli-hash", TWIN_SECURITY__SECRET_KEY="cli-key")

        async def twin_login(answers: str, *flags: str) -> tuple[int | None, str, str]:
            return await twin("login", *flags, answers=answers)

        async def twin(command: str, *flags: str, answers: str = "") -> tuple[int | None, str, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "twin",
                command,
                "--config",
                "config.toml",
                *flags,
                cwd=tmp_path,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(answers.encode()), 60)
            return process.returncode, out.decode(), err.decode()

        code, out, err = await twin_login(f"+{OWNER_PHONE}\n11111\n24680\ns3cret pass\n")
        assert code == 0, err
        assert "Logged in as Olga (@olga_owner)." in out
        assert "the login code is wrong - try again." in err  # 11111 was refused
        assert "s3cret pass" not in out + err

        # Logged in: a second `twin login` changes nothing; --force logs in again (issue 12.8).
        code, out, err = await twin_login("")
        assert code == 0, err
        assert "already logged in as Olga" in out and "--force" in out
        code, out, err = await twin_login(f"+{OWNER_PHONE}\n24680\ns3cret pass\n", "--force")
        assert code == 0, err
        assert "Logged out of 'default' (--force)." in err
        assert "Logged in as Olga (@olga_owner)." in out

        daemon = DaemonProcess(
            tmp_path,
            config,
            {
                "TWIN_TELEGRAM__API_HASH": "cli-hash",
                "TWIN_SECURITY__SECRET_KEY": "cli-key",
            },
        )
        await daemon.start()
        try:

            async def authorized() -> bool:
                status, body = await daemon.call("GET", "/auth/status")
                return status == 200 and body["authorized"]

            await daemon.until(authorized, 20, "the daemon did not reuse the saved session")
            # issue 12.6: the daemon's state from the command line (its /ready needs no token)
            code, out, err = await twin("status")
            assert code == 0, out + err
            assert "database: ok" in out and f"daemon: running at {daemon.base}, ready" in out
            assert "telegram default: ok" in out
        finally:
            assert daemon.terminate() == 0

        code, out, err = await twin("status")
        assert code == 3 and "daemon: not running" in out, out + err
        code, out, err = await twin("accounts")
        assert code == 0, err
        header, row = out.splitlines()
        assert header.split() == ["NAME", "PHONE", "USER", "LOGIN"]
        assert row.split()[0] == "default" and row.endswith("logged in")
        assert "@olga_owner" in row and OWNER_PHONE not in row  # the phone is masked
        assert server.authorizations(olga) == 1
        code, out, err = await twin("logout")
        assert code == 0, err
        assert "Account 'default' logged out; its history is kept." in out
        assert server.authorizations(olga) == 0  # the authorization ended at Telegram
        code, out, err = await twin("accounts")
        assert out.splitlines()[1].endswith("logged out")
        code, out, err = await twin("logout", "--purge")
        assert code == 0 and "deleted with all its data (no live Telegram session" in out
        code, out, err = await twin("accounts")
        assert out.strip() == "No accounts yet: `twin login` creates one."
    finally:
        await server.stop()


async def test_style_build_is_resumable_and_served_by_get_style(
    sandbox, sandbox_clients, make_daemon
):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    friends = [
        sandbox.create_user(f"1555030{i}", f"Friend{i}", username=f"friend_{i}_x") for i in range(3)
    ]
    for friend in friends:
        sandbox.add_contact(owner, friend)
    for n in range(30):
        friend = friends[n % 3]
        sandbox.send_message(owner, friend, f"Привет! Как дела, {n}? 🙂" if n % 2 else f"ok {n}")
    daemon = await make_daemon()
    await login(daemon, sandbox)
    account = await daemon.app[keys.ACCOUNTS].get()
    await account.client(functions.contacts.GetContactsRequest(hash=0))
    repo = daemon.app[keys.DATABASE].repo
    account_id = await daemon.app[keys.INTAKE].account_id("default")
    seen: list[ScanProgress] = []

    first = await build_style(account, repo, account_id, limit=12, progress=seen.append)
    assert first.message_count == 12 and seen[-1].own == 12 and seen[-1].complete
    assert seen[0].total == 30 and seen[0].chats == 3  # counted before reading
    resumed = await build_style(account, repo, account_id, limit=30)
    assert resumed.message_count == 30  # continued, nothing counted twice
    assert dict(resumed.languages).get("ru", 0) > 0
    assert (await stored_profile(repo, account_id)).message_count == 30

    status, body = await daemon.call("GET", "/style")
    assert status == 200 and body["message_count"] == 30
    assert "examples" not in body["profile"]
