"""Issue 12.2: the service route as documented must work, and a start that cannot must say why.

Relative paths resolved against the current directory, so `twin login --config /x/config.toml`
run elsewhere silently made a new empty database and key; a data directory or key file the
service user cannot use made the service fail half-way ("attempt to write a readonly database",
"cannot read sessions/secret.key: Permission denied") and restart in a loop. Now paths are
relative to the config file's directory, and a start that cannot use its files prints one line
naming the path and the problem and exits 2 (the unit's RestartPreventExitStatus=2).

The permission cases need a user that permission bits apply to. Root bypasses them, so when the
suite runs as root (CI) twin runs as `nobody`: a child Python imports everything it needs as
root (the interpreter lives under /root, which nobody cannot read), drops to nobody with
setgid/setuid and then runs the CLI's `main`. As another user, the test takes the permission
away from that user itself with chmod.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.running import clean_environment, run_until_healthy
from tests.e2e.process import free_port

AS_ROOT = os.geteuid() == 0
TWIN_USER = pwd.getpwnam("nobody") if AS_ROOT else pwd.getpwuid(os.geteuid())

# Run `twin.cli.main(argv)` as uid/gid argv[1:3], everything imported first (see above).
AS_USER = """
import importlib, os, pkgutil, sys
import twin
for module in pkgutil.walk_packages(twin.__path__, "twin."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
uid, gid = int(sys.argv[1]), int(sys.argv[2])
if os.geteuid() != uid:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
sys.exit(twin.cli.main(sys.argv[3:]))
"""


def twin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin", *args],
        cwd=cwd,
        env=clean_environment(PYTHONPATH=os.environ.get("PYTHONPATH", "")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def twin_as_user(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`twin ARGS` as TWIN_USER (nobody when the suite runs as root, else this user)."""
    argv = [sys.executable, "-c", AS_USER, str(TWIN_USER.pw_uid), str(TWIN_USER.pw_gid), *args]
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_environment(PYTHONPATH=os.environ.get("PYTHONPATH", "")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def for_twin_user(path: Path, permissions: int) -> None:
    """Give TWIN_USER exactly `permissions` (0-7, rwx) on `path`: as root, through the "other"
    bits of a root-owned path; else through the owner bits of our own path."""
    if AS_ROOT:
        os.chmod(path, 0o700 | permissions)
    else:
        os.chmod(path, permissions << 6)


def owned_by_twin_user(path: Path) -> None:
    if AS_ROOT:
        os.chown(path, TWIN_USER.pw_uid, TWIN_USER.pw_gid)


@pytest.fixture
def site() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="twin-site-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o755)
        shutil.rmtree(root)


def write_config(directory: Path, text: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    config = directory / "config.toml"
    config.write_text(f"[api]\nport = {free_port()}\n" + text, encoding="utf-8")
    config.chmod(0o644)
    return config


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # said once, and nothing else
    return lines[0]


async def test_commands_run_elsewhere_use_the_config_files_directory(tmp_path: Path) -> None:
    config = write_config(tmp_path / "etc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    migrated = twin("migrate", "--config", "../etc/config.toml", cwd=elsewhere)
    assert migrated.returncode == 0, migrated.stderr
    run = await run_until_healthy(
        [sys.executable, "-m", "twin", "run", "--config", str(config), "--port", "0"],
        cwd=elsewhere,
        env=clean_environment(
            PYTHONPATH=os.environ.get("PYTHONPATH", ""), TWIN_API__TOKENS="a-long-enough-token-1"
        ),
    )
    assert run.exit_code == 0, run.output
    assert sorted(p.name for p in (tmp_path / "etc" / "sessions").iterdir()) == [
        "secret.key",
        "twin.db",
        "twin.db.lock",  # `twin run`'s: one daemon per SQLite file (kept; unlocked when it ends)
    ]
    assert list(elsewhere.iterdir()) == []  # nothing was created where the command ran
    assert run.output.count("created a new secret key") == 1  # run reused migrate's database
    checked = twin("check-config", "--config", "../etc/config.toml", cwd=elsewhere)
    assert f'url = "sqlite+aiosqlite:///{tmp_path}/etc/sessions/twin.db"' in checked.stdout
    assert f'key_file = "{tmp_path}/etc/sessions/secret.key"' in checked.stdout


def test_a_file_where_the_data_directory_should_be_stops_every_command_at_once(
    tmp_path: Path,
) -> None:
    write_config(tmp_path)
    (tmp_path / "sessions").write_text("not a directory")
    for command in (["run"], ["migrate"], ["login", "--phone", "+15550100"], ["style", "show"]):
        line = one_error_line(twin(*command, cwd=tmp_path))
        assert line == f"error: data directory {tmp_path / 'sessions'} is not a directory"

    (tmp_path / "sessions").unlink()
    (tmp_path / "state").write_text("not a directory either")
    write_config(tmp_path, '[storage]\ndata_dir = "state/twin"\n')
    line = one_error_line(twin("run", cwd=tmp_path))
    assert line == (
        f"error: cannot create data directory {tmp_path / 'state' / 'twin'}: not a directory"
    )


def test_a_data_directory_the_user_cannot_write(site: Path) -> None:
    write_config(site)
    data = site / "sessions"
    data.mkdir()
    for_twin_user(data, 0o5)  # r-x
    config = str(site / "config.toml")
    for command in ("run", "migrate"):
        line = one_error_line(twin_as_user(command, "--config", config, cwd=site))
        assert line == f"error: data directory {data} is not writable by user {TWIN_USER.pw_name}"
    assert list(data.iterdir()) == []


def test_a_key_file_the_user_cannot_read(site: Path) -> None:
    write_config(site)
    data = site / "sessions"
    data.mkdir(mode=0o700)
    owned_by_twin_user(data)
    key = data / "secret.key"
    key.write_text("a-key-made-by-someone-else\n")
    for_twin_user(key, 0)
    line = one_error_line(twin_as_user("run", "--config", str(site / "config.toml"), cwd=site))
    assert line == f"error: cannot read key file {key}: permission denied"
    assert sorted(p.name for p in data.iterdir()) == ["secret.key"]  # no database was made


def test_a_database_file_the_user_cannot_write(site: Path) -> None:
    config = write_config(site)
    migrated = twin("migrate", "--config", str(config), cwd=site)  # as the installing user
    assert migrated.returncode == 0, migrated.stderr
    data = site / "sessions"
    owned_by_twin_user(data)
    for_twin_user(data / "twin.db", 0o4)  # r--: "attempt to write a readonly database"
    line = one_error_line(twin_as_user("run", "--config", str(config), cwd=site))
    assert line == (
        f"error: database file {data / 'twin.db'} is not readable and writable by user "
        f"{TWIN_USER.pw_name}"
    )
