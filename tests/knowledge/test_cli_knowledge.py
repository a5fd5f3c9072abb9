"""`twin knowledge add | list | search | remove` as a user runs them: subprocesses of
`python -m twin` on a fresh SQLite database (issue 16, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.test_cli import run_twin


def test_add_list_search_remove(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "prices.md").write_text(
        "# Цены\n\n## Ремонт\n\nЗамена цепи — 900 рублей.\n\n## Аренда\n\nВелосипед — 300 "
        "рублей в час.\n",
        encoding="utf-8",
    )
    (docs / "faq.json").write_text(
        json.dumps([{"question": "Do you deliver?", "answer": "Yes, within the city for $5."}]),
        encoding="utf-8",
    )
    (docs / "scan.pdf").write_bytes(b"%PDF-1.4\n%broken")  # cannot be read
    (docs / "notes.bin").write_bytes(b"\x00\x01")  # not a document: not picked from a folder
    env = {"TWIN_SECURITY__SECRET_KEY": "cli-test-secret-0123456789"}

    added = run_twin("knowledge", "add", str(docs), "--quiet", cwd=tmp_path, env=env)
    assert added.returncode == 1, added.stderr  # one file failed, the others are stored
    assert "added prices.md" in added.stdout and "added faq.json" in added.stdout
    assert "scan.pdf" in added.stderr and "1 of 3 files were not added" in added.stderr
    assert "Traceback" not in added.stderr

    again = run_twin("knowledge", "add", str(docs / "prices.md"), cwd=tmp_path, env=env)
    assert again.returncode == 0 and "unchanged prices.md" in again.stdout

    listed = run_twin("knowledge", "list", "--json", cwd=tmp_path, env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {row["name"] for row in rows} == {"faq.json", "prices.md"}
    assert {row["kind"] for row in rows} == {"qa", "markdown"}

    found = run_twin("knowledge", "search", "сколько стоит заменить цепь", cwd=tmp_path, env=env)
    assert found.returncode == 0
    assert found.stdout.splitlines()[0].endswith("prices.md › Цены > Ремонт")

    removed = run_twin("knowledge", "remove", "faq.json", cwd=tmp_path, env=env)
    assert removed.returncode == 0
    listed = run_twin("knowledge", "list", cwd=tmp_path, env=env)
    assert "faq.json" not in listed.stdout and "prices.md" in listed.stdout
    unknown = run_twin("knowledge", "list", "--twin", "nobody", cwd=tmp_path, env=env)
    assert unknown.returncode != 0 and "nobody" in unknown.stderr
    assert "Traceback" not in unknown.stderr
