"""Issue 12.8: `twin login` asks again for a wrong two-step password (as for a wrong code) and
checks phones exactly as the API does; `twin run` on a port another socket holds says so in one
line and exits 2 before Telegram is contacted.

`twin login` and `twin run` are subprocesses against the sandbox MTProto server, which counts
the requests it serves."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from tests.core.running import clean_environment
from tests.e2e.conftest import OWNER_PHONE
from tests.e2e.process import DaemonProcess
from twin.sandbox.server import SandboxServer

SECRETS = {"TWIN_TELEGRAM__API_HASH": "cli-hash", "TWIN_SECURITY__SECRET_KEY": "cli-key"}
PASSWORD = "s3cret pass"


def configure(sandbox: SandboxServer, pem: Path, tmp_path: Path) -> DaemonProcess:
    """An owner with two-step verification on the sandbox, and tmp_path/config.toml for it."""
    sandbox.world.fixed_code = "24680"
    sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner", password=PASSWORD)
    config = {
        "telegram": {
            "api_id": 1,
            "server": f"127.0.0.1:{sandbox.port}",
            "dc_id": sandbox.dc_id,
            "rsa_public_key_file": str(pem),
        },
        "stt": {"provider": "none"},
    }
    return DaemonProcess(tmp_path, config, SECRETS)  # writes config.toml


def requests(sandbox: SandboxServer) -> int:
    return sum(sandbox.calls.values())


async def twin(*args: str, cwd: Path, answers: str = "") -> tuple[int, str, str]:
    env = clean_environment(PYTHONPATH=os.environ.get("PYTHONPATH", ""), **SECRETS)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twin",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(answers.encode()), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_login_asks_again_for_a_malformed_phone_and_a_wrong_password(
    sandbox: SandboxServer, sandbox_pem: Path, tmp_path: Path
) -> None:
    configure(sandbox, sandbox_pem, tmp_path)
    answers = f"12ab345678\n+{OWNER_PHONE}\n11111\n24680\nwrong pass\n{PASSWORD}\n"
    code, out, err = await twin("login", cwd=tmp_path, answers=answers)
    assert code == 0, err
    assert "Logged in as Olga (@olga_owner)." in out
    assert err.count(" - try again.") == 3
    assert "not a phone number in international form: 7 to 15 digits" in err
    assert "the login code is wrong - try again." in err
    assert "the two-step verification password is wrong - try again." in err
    assert PASSWORD not in out + err and "wrong pass" not in out + err


async def test_login_gives_up_after_three_wrong_passwords(
    sandbox: SandboxServer, sandbox_pem: Path, tmp_path: Path
) -> None:
    configure(sandbox, sandbox_pem, tmp_path)
    answers = f"+{OWNER_PHONE}\n24680\nwrong 1\nwrong 2\nwrong 3\n{PASSWORD}\n"
    code, out, err = await twin("login", cwd=tmp_path, answers=answers)
    assert code == 1
    assert err.count("the two-step verification password is wrong - try again.") == 2
    assert err.splitlines()[-1].endswith(": error: the two-step verification password is wrong")
    assert "Logged in" not in out


async def test_a_phone_option_the_api_would_refuse_is_refused_before_anything_starts(
    sandbox: SandboxServer, sandbox_pem: Path, tmp_path: Path
) -> None:
    configure(sandbox, sandbox_pem, tmp_path)
    for phone in ("12345", "+1 555 0100 (home)", "+1234567890123456"):
        code, _, err = await twin("login", "--phone", phone, cwd=tmp_path)
        assert code == 2
        assert "argument --phone: not a phone number in international form" in err
    assert not sandbox.calls  # Telegram was not asked anything
    assert not (tmp_path / "sessions").exists()


async def test_a_port_in_use_stops_twin_run_before_telegram_is_contacted(
    sandbox: SandboxServer, sandbox_pem: Path, tmp_path: Path
) -> None:
    daemon = configure(sandbox, sandbox_pem, tmp_path)
    answers = f"+{OWNER_PHONE}\n24680\n{PASSWORD}\n"
    code, _, err = await twin("login", cwd=tmp_path, answers=answers)
    assert code == 0, err
    contacted = requests(sandbox)

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, out, err = await twin("run", "--port", str(port), cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert requests(sandbox) == contacted  # Telegram was not contacted

    # On a free port the same daemon connects the logged-in account at once.
    await daemon.start()
    try:

        async def authorized() -> bool:
            status, body = await daemon.call("GET", "/auth/status")
            return status == 200 and body["authorized"]

        await daemon.until(authorized, 20, "the daemon did not reuse the saved session")
        assert requests(sandbox) > contacted
    finally:
        assert daemon.terminate() == 0, daemon.output()
