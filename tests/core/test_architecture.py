"""The layering of docs/ARCHITECTURE.md, enforced with import-linter's contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# In a subprocess: import-linter configures logging globally, which must not leak into the suite.
SCRIPT = (
    "import sys; from importlinter.cli import lint_imports; "
    f"sys.exit(lint_imports(config_filename={str(REPO / 'pyproject.toml')!r}, no_cache=True))"
)


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout, result.stdout


MAX_MODULE_LINES = 500  # docs/ARCHITECTURE.md: past this a module is split along its seams


def test_no_module_outgrows_its_seams() -> None:
    too_long = {
        str(path.relative_to(REPO)): lines
        for path in sorted((REPO / "twin").rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"split these along the design's seams: {too_long}"
