"""The layering of docs/ARCHITECTURE.md, enforced with import-linter's contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "importlinter.cli", "--config", str(REPO / "pyproject.toml")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0 and "No module named importlinter.cli" in result.stderr:
        result = subprocess.run(
            ["lint-imports", "--config", str(REPO / "pyproject.toml")],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
