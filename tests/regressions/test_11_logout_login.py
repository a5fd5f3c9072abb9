"""Issue 11.12: after logging out and in again the daemon must hear its contacts again.

Before the fix the Telethon client rebuilt by the new login never got the event handlers, so no
incoming message was handled; and the logout itself warned (Telethon's experimental async
session path) and deleted the session twice.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import (
    OWNER_PHONE,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from tests.e2e.process import DaemonProcess
from twin import keys


async def test_logout_then_login_in_the_same_process_answers_again(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)

    status, body = await daemon.call("POST", "/auth/logout", json={})
    assert status == 200 and body == {"status": "logged_out"}
    status, body = await daemon.call("GET", "/auth/status")
    assert status == 200 and body["authorized"] is False
    assert sandbox.online_sessions(owner) == 0  # the authorization ended at Telegram too
    repo = daemon.app[keys.DATABASE].repo
    assert (await repo.get_account("default")).has_session is False

    await login(daemon, sandbox)
    await carl.send_message(owner.id, "are you there?")
    await wait_for_event(daemon, "reply.sent")
    assert len(sandbox.messages_from(owner, contact)) == 1


def _config(sandbox, pem: Path, tmp_path: Path, llm_url: str) -> dict:
    sections = fast_pipeline(llm_url)
    return {
        **sections,
        "telegram": {
            "api_id": 12345,
            "server": f"127.0.0.1:{sandbox.port}",
            "dc_id": sandbox.dc_id,
            "rsa_public_key_file": str(pem),
            "flood_sleep_threshold": 0,
            "sweep_interval": 3600,
        },
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"},
        "stt": {"provider": "none"},
        "llm": {k: v for k, v in sections["llm"].items() if k != "api_key"},
    }


SECRETS = {
    "TWIN_TELEGRAM__API_HASH": "e2e-api-hash",
    "TWIN_SECURITY__SECRET_KEY": "e2e-secret-key",
    "TWIN_LLM__API_KEY": "sk-test",
}


async def _cli_login(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update(SECRETS)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twin",
        "login",
        "--config",
        "config.toml",
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(f"+{OWNER_PHONE}\n24680\n".encode()), 60)
    assert process.returncode == 0, err.decode()
    assert "Logged in as Olga" in out.decode()


async def test_logout_through_the_api_then_twin_login_then_twin_run_answers(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
):
    owner, contact = people(sandbox)
    sandbox.world.fixed_code = "24680"
    config = _config(sandbox, sandbox_pem, tmp_path, fake_openai.base_url + "/v1")
    daemon = DaemonProcess(tmp_path, config, SECRETS)  # writes config.toml
    await _cli_login(tmp_path)

    await daemon.start()
    try:

        async def authorized() -> bool:
            status, body = await daemon.call("GET", "/auth/status")
            return status == 200 and body["authorized"]

        await daemon.until(authorized, 20, "the daemon did not reuse the saved session")
        status, _ = await daemon.call("POST", "/auth/logout", json={})
        assert status == 200
        status, body = await daemon.call("GET", "/auth/status")
        assert body["authorized"] is False
    finally:
        assert daemon.terminate() == 0, daemon.output()

    await _cli_login(tmp_path)
    await daemon.start()
    try:
        await daemon.until(authorized, 20, "the daemon did not use the new session")
        carl = await contact_client(sandbox_clients)
        await carl.send_message(owner.id, "back again?")
        await daemon.until(
            lambda: len(sandbox.messages_from(owner, contact)) == 1,
            20,
            "the message was not answered after the new login",
        )
    finally:
        assert daemon.terminate() == 0, daemon.output()
