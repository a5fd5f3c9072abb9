"""The distribution as a user installs it: the wheel, in a fresh venv, run in an empty directory
(no source checkout, no config.toml)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.core.running import clean_environment, run_until_healthy
from twin.db import migrate

REPO = Path(__file__).resolve().parents[2]
TOKEN = "a-long-enough-token-123"


def _run(
    *argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env or clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once per session from a copy of the sources (a build writes build/ and
    *.egg-info next to them)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, source / name)
    for name in ("twin", "migrations"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    build = _run(*pip, "--quiet", "--wheel-dir", str(out), str(source))
    assert build.returncode == 0, build.stdout + build.stderr
    (built,) = out.glob("twin-*.whl")
    return built


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed. Its dependencies come from the environment running
    this suite (nothing to download): a .pth file puts that environment's site-packages after
    the venv's own. Not --system-site-packages, which would be the *base* interpreter's packages:
    in CI's brand-new venv those are not what README's install command installed. The .pth
    files of that environment are not processed (an editable twin stays out), so the test
    checks that twin is the wheel's. pip too comes from there, and installs into the venv."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120
    )
    python = str(root / "bin" / "python")
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    Path(site.stdout.strip(), "dependencies.pth").write_text("\n".join(ours) + "\n")
    install = _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel))
    assert install.returncode == 0, install.stdout + install.stderr
    return root


def test_the_wheel_ships_the_license_pyproject_names(wheel: Path) -> None:
    """Issue 12.8: pyproject says MIT; the LICENSE file says so too, and ships in the wheel."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n") and "Permission is hereby granted" in text
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        shipped = info.replace("METADATA", "licenses/LICENSE")
        assert archive.read(shipped).decode() == text
        assert "License-Expression: MIT" in archive.read(info).decode().splitlines()


def test_the_wheel_ships_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name.removeprefix("twin/_migrations/") for name in names if "_migrations/" in name}
    in_repo = {
        str(path.relative_to(REPO / "migrations"))
        for path in (REPO / "migrations").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped == in_repo
    assert "twin/_migrations/env.py" in names
    assert not any(name.startswith("migrations/") for name in names)  # no top-level package


def test_the_wheel_ships_the_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twin/knowledge/synonyms.txt" in names  # the built-in synonyms
    assert "twin/services/style_report.html" in names  # `twin style eval`'s report template
    assert {"twin/api/app_static/app.js", "twin/api/app_static/LICENSE.preact"} <= names


async def test_installed_wheel_migrates_and_runs_in_an_empty_directory(
    venv: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = clean_environment(TWIN_API__TOKENS=TOKEN)

    code = "import twin, twin.db.migrate as m; print(twin.__file__); print(m.MIGRATIONS_DIR)"
    where = await asyncio.to_thread(_run, venv / "bin" / "python", "-c", code, cwd=workdir, env=env)
    assert where.returncode == 0, where.stderr
    package, migrations = map(Path, where.stdout.split())
    assert package.is_relative_to(venv), f"twin imported from {package}, not from the wheel"
    assert migrations == package.parent / "_migrations"

    migrated = await asyncio.to_thread(_run, venv / "bin" / "twin", "migrate", cwd=workdir, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == f"database at {migrate.head()}"

    run = await run_until_healthy(
        [str(venv / "bin" / "twin"), "run", "--port", "0"], cwd=workdir, env=env
    )
    assert run.exit_code == 0, run.output
    assert "Traceback" not in run.output
    assert sorted(p.name for p in workdir.iterdir()) == ["sessions"]  # no config.toml appeared


async def test_installed_wheel_runs_the_demo_without_a_source_checkout(
    venv: Path, tmp_path: Path
) -> None:
    """Issue 12.9: `twin demo --script` from the wheel alone (the sandbox ships in it)."""
    workdir = tmp_path / "empty"
    workdir.mkdir()
    demo = await asyncio.to_thread(
        _run, venv / "bin" / "twin", "demo", "--script", cwd=workdir, env=clean_environment()
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Every one of the 3 lines got a reply." in demo.stdout
    assert "Traceback" not in demo.stdout + demo.stderr
    assert list(workdir.iterdir()) == []  # everything lived in a temporary directory
