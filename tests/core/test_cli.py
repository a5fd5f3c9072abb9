"""The CLI as a new user meets it: subprocesses of `python -m twin`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_twin(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    base = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "twin", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("command", ["run", "migrate", "check-config", "service-unit"])
def test_every_command_has_useful_help(command: str, tmp_path: Path) -> None:
    result = run_twin(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--config" in result.stdout
    assert len(result.stdout.splitlines()) > 5


def test_check_config_prints_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[api]\nport = 9123\n", encoding="utf-8")
    result = run_twin(
        "check-config",
        cwd=tmp_path,
        env={"TWIN_API__TOKENS": "very-secret-token", "TWIN_LLM__MODEL": "gpt-test"},
    )
    assert result.returncode == 0, result.stderr
    assert "very-secret-token" not in result.stdout + result.stderr
    printed = tomllib.loads(result.stdout)
    assert printed["api"]["port"] == 9123
    assert printed["api"]["tokens"] == ["********"]
    assert printed["llm"]["model"] == "gpt-test"


def test_invalid_config_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        '[api]\nport = "x"\n[telegram]\napi_hash = "leaky-hash-value"\n', encoding="utf-8"
    )
    result = run_twin("check-config", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert sorted(line.split(":", 2)[1].strip() for line in result.stderr.splitlines()) == [
        "api.port",
        "telegram.api_hash",
    ]
    assert "leaky-hash-value" not in result.stderr
    assert "Traceback" not in result.stderr

    (tmp_path / "bad.toml").write_text('[api]\nport = "x"\nbogus = 1\n', encoding="utf-8")
    result = run_twin("check-config", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == [
        "config error: api.bogus: unknown key",
        "config error: api.port: Input should be a valid integer, unable to parse string as an"
        " integer",
    ]


def test_service_unit_is_hardened(tmp_path: Path) -> None:
    result = run_twin("service-unit", "--user", "owner", cwd=tmp_path)
    assert result.returncode == 0
    unit = result.stdout
    for directive in (
        "Type=simple",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",  # a start that cannot work stops instead of looping
        "EnvironmentFile=/etc/twin/twin.env",
        "StateDirectory=twin",  # /var/lib/twin, created by systemd for User=
        "StateDirectoryMode=0700",
        "WorkingDirectory=%S/twin",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "PrivateTmp=true",
        "CapabilityBoundingSet=",
        "User=owner",
    ):
        assert directive in unit.splitlines(), directive
    assert f" -m twin run --config {tmp_path.resolve() / 'config.toml'} " in unit
    # No ExecStartPre: its failure would restart the unit whatever its exit status (twin run
    # upgrades the schema itself), and no ReadWritePaths into a checkout: the state directory.
    assert "ExecStartPre=" not in unit and "ReadWritePaths=" not in unit
    assert "does not exist yet" in result.stderr  # no config.toml in tmp_path

    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    config.write_text("", encoding="utf-8")
    result = run_twin("service-unit", "--config", "etc/config.toml", cwd=tmp_path)
    assert f" -m twin run --config {config.resolve()} --log-format json" in result.stdout
    assert "User=twin" in result.stdout.splitlines() and result.stderr == ""


async def test_new_user_minimal_config_runs(tmp_path: Path) -> None:
    """The README's promise: the repository's config.toml plus TWIN_API__TOKENS is enough."""
    import asyncio
    import shutil
    import signal

    import aiohttp

    from tests.e2e.process import free_port

    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    port = free_port()
    env = {"TWIN_API__TOKENS": "a-long-enough-token-123", "TWIN_API__PORT": str(port)}
    assert run_twin("check-config", cwd=tmp_path, env=env).returncode == 0

    base = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twin",
        "run",
        cwd=tmp_path,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        if response.status == 200:
                            assert (await response.json())["database"] == "ok"
                            break
                except aiohttp.ClientError:
                    pass
                assert loop.time() < deadline, "twin run did not become healthy"
                await asyncio.sleep(0.1)
            headers = {"Authorization": "Bearer a-long-enough-token-123"}
            async with http.get(f"http://127.0.0.1:{port}/auth/status", headers=headers) as r:
                assert (await r.json())["configured"] is False  # no Telegram yet: says so
    finally:
        process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 15))[0].decode()
    assert process.returncode == 0, output
    key_file = tmp_path / "sessions" / "secret.key"
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    assert output.count("created a new secret key") == 1
    assert (tmp_path / "sessions" / "twin.db").exists()
