"""Issue 12.8: `twin style build`'s progress bar showed messages read against the --limit (so
an owner with fewer messages never saw it fill) and never said whether the profile was done.
Now it shows history messages scanned against the real total (counted from Telegram first) and
ends with a line saying the profile is complete and why."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import tomli_w

from tests.e2e.conftest import OWNER_PHONE, daemon_settings, login


def _chatty_owner(sandbox):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    for i in range(3):
        friend = sandbox.create_user(f"1555030{i}", f"Friend{i}", username=f"friend_{i}_x")
        sandbox.add_contact(owner, friend)
        for n in range(8):  # 8 of hers and 4 of theirs in each chat
            sandbox.send_message(owner, friend, f"Привет! Как дела, {n}? 🙂")
            if n % 2:
                sandbox.send_message(friend, owner, f"ok {n}")
    return owner


async def _style_build(sandbox, sandbox_pem, tmp_path: Path, *flags: str) -> tuple[int, str, str]:
    settings = daemon_settings(sandbox, sandbox_pem, tmp_path)
    config = {
        "telegram": {
            "api_id": settings.telegram.api_id,
            "server": settings.telegram.server,
            "dc_id": settings.telegram.dc_id,
            "rsa_public_key_file": str(sandbox_pem),
        },
        "storage": {"url": settings.storage.url},
    }
    (tmp_path / "cli.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update(TWIN_TELEGRAM__API_HASH="e2e-api-hash", TWIN_SECURITY__SECRET_KEY="e2e-secret-key")
    build = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twin",
        "style",
        "build",
        "--config",
        "cli.toml",
        *flags,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(build.communicate(), 60)
    return build.returncode or 0, out.decode(), err.decode()


async def test_progress_counts_against_the_real_total_and_says_when_complete(
    sandbox, sandbox_pem, tmp_path: Path, make_daemon
):
    _chatty_owner(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    await daemon.stop()

    code, out, err = await _style_build(sandbox, sandbox_pem, tmp_path)
    assert code == 0, err
    states = re.findall(r"scanned (\d+) of (\d+) messages, (\d+) of yours", err)
    assert states[0] == ("0", "36", "0")  # 3 chats × 12 messages, counted before reading
    assert states[-1] == ("36", "36", "24")  # every message scanned: the bar is full
    assert "chat 3/3" in err.splitlines()[-2]
    assert err.splitlines()[-1] == (
        "Style profile complete (every private chat was read): 24 of your messages."
    )
    assert "Writes in" in out

    code, out, err = await _style_build(
        sandbox, sandbox_pem, tmp_path, "--restart", "--limit", "10"
    )
    assert code == 0, err
    assert err.splitlines()[-1] == (
        "Style profile complete (the --limit was reached): 10 of your messages."
    )
