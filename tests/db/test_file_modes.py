"""The files holding chats, sessions and the key are private to their owner, whatever the umask
(outside systemd, whose unit sets UMask=0077, a shell's umask is usually 022)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db.conftest import make_settings
from twin.db import migrate
from twin.db.engine import database


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_new_database_key_and_their_directory_are_private(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    db_file = sessions / "twin.db"
    url = f"sqlite+aiosqlite:///{db_file}"
    await migrate.upgrade(url)  # `twin migrate` creates the directory and the file
    assert mode(sessions) == 0o700
    assert mode(db_file) == 0o600

    settings = make_settings(url, tmp_path, secret=None)  # the key file goes to a new keys/
    async with database(settings) as db:
        await db.repo.get_or_create_account("default")  # a write: WAL and shared memory
        wal, shm = Path(f"{db_file}-wal"), Path(f"{db_file}-shm")  # mode() fails if absent
        assert (mode(wal), mode(shm)) == (0o600, 0o600)  # SQLite copies the database's mode
    key_file = settings.security.key_file
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700


async def test_existing_files_readable_by_others_are_reported_not_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_file = tmp_path / "twin.db"
    url = f"sqlite+aiosqlite:///{db_file}"
    await migrate.upgrade(url)
    db_file.chmod(0o644)  # made by an older version, or by hand
    settings = make_settings(url, tmp_path, secret=None)
    settings.security.key_file.parent.mkdir()
    settings.security.key_file.write_text("a-key-made-by-hand\n", encoding="utf-8")
    settings.security.key_file.chmod(0o640)

    with caplog.at_level(logging.WARNING):
        async with database(settings):
            pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert f"database file {db_file} is accessible to other users (mode 644)" in warnings[1]
    assert f"secret key file {settings.security.key_file}" in warnings[0]
    assert (mode(db_file), mode(settings.security.key_file)) == (0o644, 0o640)  # left alone
