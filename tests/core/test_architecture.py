"""The layering of docs/ARCHITECTURE.md, enforced with import-linter's contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    status = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    output = capsys.readouterr().out
    assert status == EXIT_STATUS_SUCCESS, output
    assert "4 kept, 0 broken" in output
