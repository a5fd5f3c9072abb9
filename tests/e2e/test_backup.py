"""`twin backup` while `twin run` answers, `twin restore` into an empty database, and the
restored daemon starting logged in and answering (issue 20 §5); a restore over a database
that is not empty, and a backup of PostgreSQL, refused in one line."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib

import tomli_w

from tests.e2e.conftest import brain_reply
from tests.e2e.process import DaemonProcess
from tests.e2e.test_crash_safety import setup


def twin(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin", *args, "--config", "config.toml"],
        cwd=daemon.workdir,
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_backup_while_running_then_restore_starts_logged_in(
    sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
):
    daemon, talk, contact = await setup(
        sandbox, sandbox_clients, sandbox_pem, tmp_path, fake_openai
    )
    fake_openai.respond_with(lambda body: brain_reply("before the backup"))
    await talk.client.send_message(talk.owner.id, "hello")
    await talk.wait_received(1)

    backup = tmp_path / "backups" / "twin-backup.db"
    done = twin(daemon, "backup", str(backup))  # the daemon keeps running meanwhile
    assert done.returncode == 0, done.stderr
    assert "secret key" in done.stdout
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # the sessions are inside
    assert sorted(p.name for p in backup.parent.iterdir()) == ["twin-backup.db"]  # one file
    again = twin(daemon, "backup", str(backup))
    assert again.returncode == 2 and "exists" in again.stderr
    assert daemon.terminate() == 0

    # a new home with the same secret key: restore, start, logged in, answering
    home = tmp_path / "restored"
    home.mkdir()
    config = tomllib.loads((tmp_path / "config.toml").read_text())
    config["storage"]["url"] = f"sqlite+aiosqlite:///{home / 'twin.db'}"
    restored = DaemonProcess(home, config, {})
    restored.env = {**daemon.env}
    done = twin(restored, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    refused = twin(restored, "restore", str(backup))
    assert refused.returncode == 2 and "not empty" in refused.stderr
    await restored.start()
    try:

        async def connected() -> bool:
            status, body = await restored.call("GET", "/accounts")
            return status == 200 and [a["status"] for a in body["accounts"]] == ["connected"]

        await restored.until(connected, 20, "the restored daemon is not logged in")
        status, body = await restored.call("GET", "/messages", params={"chat": contact.id})
        assert [m["text"] for m in reversed(body["messages"])] == ["hello", "before the backup"]
        fake_openai.respond_with(lambda body: brain_reply("after the restore"))
        await talk.client.send_message(talk.owner.id, "still there?")
        await talk.wait_received(2)
    finally:
        restored.terminate()
    assert talk.received == ["before the backup", "after the restore"]


def test_postgresql_backups_are_pg_dumps(tmp_path) -> None:
    config = {"storage": {"url": "postgresql+asyncpg://postgres@127.0.0.1:5432/test"}}
    (tmp_path / "config.toml").write_text(tomli_w.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "twin", "backup", "copy.db", "--config", "config.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TWIN_SECURITY__SECRET_KEY": "backup-secret"},
    )
    assert done.returncode == 2, done.stderr
    assert "pg_dump" in done.stderr and "secret key" in done.stderr
    assert not (tmp_path / "copy.db").exists()
