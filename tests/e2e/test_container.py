"""The container image (issue 20 §4): its entry point — the command and environment the
Dockerfile declares, read from it — runs `twin run` on environment variables alone (no config
file) from the installed wheel, keeps its files private, answers /health (the HEALTHCHECK) and
stops cleanly on SIGTERM;
and the image builds where a Docker daemon can build it (skipped with the reason elsewhere)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.core.test_packaging import venv, wheel  # noqa: F401  (fixtures: the wheel)
from tests.e2e.process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def runtime_stage() -> str:
    """The Dockerfile's last stage (the image that runs)."""
    return DOCKERFILE.read_text().split("\nFROM ")[-1]


def declared_env() -> dict[str, str]:
    """The ENV of the runtime stage (`KEY=value` pairs, continued lines joined)."""
    stage = runtime_stage().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in stage.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def declared_command() -> list[str]:
    stage = runtime_stage()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", stage, re.M).group(1))
    command = json.loads(re.search(r"^CMD (.+)$", stage, re.M).group(1))
    return entrypoint + command


def declared_healthcheck() -> list[str]:
    stage = runtime_stage().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*? CMD (\[.+\])$", stage, re.M)
    assert found is not None
    return json.loads(found.group(1))


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status
    except OSError:
        return 0


def test_the_entry_point_runs_on_the_environment_alone(tmp_path, venv: Path) -> None:  # noqa: F811
    """The image's command, run as the image runs it: the `twin` console script of the
    installed wheel (a fresh venv, the suite's environment for the dependencies)."""
    env = declared_env()
    assert env["TWIN_API__HOST"] == "0.0.0.0" and env["TWIN_STORAGE__DATA_DIR"] == "/app/sessions"
    command = declared_command()
    assert command == ["twin", "run"]
    port = free_port()
    data = tmp_path / "app" / "sessions"  # the image's volume, here
    workdir = tmp_path / "app"
    workdir.mkdir()
    run_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        **env,
        "TWIN_STORAGE__DATA_DIR": str(data),
        "TWIN_API__HOST": "127.0.0.1",  # the container's 0.0.0.0, kept on loopback here
        "TWIN_API__PORT": str(port),
        "TWIN_API__TOKENS": "container-token-0123456789",
    }
    log = (tmp_path / "daemon.log").open("wb")
    process = subprocess.Popen(
        [str(venv / "bin" / command[0]), *command[1:]], cwd=workdir, env=run_env, stderr=log
    )
    try:
        for _ in range(600):  # another process starting: polled until it answers
            if health(port) == 200:
                break
            assert process.poll() is None, (tmp_path / "daemon.log").read_text()
            time.sleep(0.05)
        assert health(port) == 200
        check = declared_healthcheck()  # the image's HEALTHCHECK, run as the image would
        assert check[0] == "python"
        healthy = subprocess.run(
            [str(venv / "bin" / "python"), *check[1:]],
            env=run_env,
            capture_output=True,
            timeout=30,
        )
        assert healthy.returncode == 0, healthy.stderr
        assert not (workdir / "config.toml").exists()  # configured by the environment alone
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for private in (data / "twin.db", data / "secret.key"):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        process.send_signal(signal.SIGTERM)  # `docker stop`
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
    lines = (tmp_path / "daemon.log").read_text().splitlines()
    assert lines and all(json.loads(line)["message"] for line in lines)  # JSON logs
    assert "Traceback" not in "\n".join(lines)


def test_the_image_builds_where_docker_can(tmp_path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker command here")
    if subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no Docker daemon reachable here (docker info fails)")
    tag = f"twin-test:{os.getpid()}"
    built = subprocess.run(
        [docker, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=900
    )
    if built.returncode != 0 and re.search(
        r"failed to (resolve|fetch|do request)|pull access denied|dial tcp|no such host",
        built.stderr,
    ):
        pytest.skip("Docker cannot fetch the base image here: " + built.stderr.strip()[-200:])
    assert built.returncode == 0, built.stderr[-2000:]
    try:
        inspected = subprocess.run(
            [docker, "image", "inspect", tag], capture_output=True, text=True, check=True
        )
        config = json.loads(inspected.stdout)[0]["Config"]
        assert config["User"] == "twin"
        assert config["Entrypoint"] == ["twin"] and config["Cmd"] == ["run"]
        assert "/health" in " ".join(config["Healthcheck"]["Test"])
        assert "/app/sessions" in config["Volumes"]
    finally:
        subprocess.run([docker, "image", "rm", "-f", tag], capture_output=True)
