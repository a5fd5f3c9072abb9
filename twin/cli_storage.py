"""`twin backup PATH`, `twin restore PATH`, `twin purge [--dry-run] [--days N]`.

A backup of a SQLite database is taken with SQLite's online backup API: a consistent copy
while `twin run` keeps writing (it copies pages and starts over when they change under it). It
holds the Telegram sessions, encrypted with the secret key, so it is written readable by its
owner only — and the key (`TWIN_SECURITY__SECRET_KEY` or the key file) must be kept with it: a
backup restored without it cannot log in. On PostgreSQL the database's own tools do this
(`pg_dump` / `pg_restore`), and these commands say so. `restore` writes into an empty
database only (no file, or an empty one) and never while a daemon serves it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from twin.errors import StartupError

KEY_NOTE = (
    "The Telegram sessions in it are encrypted with your secret key (TWIN_SECURITY__SECRET_KEY "
    "or the key file): keep the key with the backup, or the restored twin cannot log in."
)
POSTGRES_NOTE = (
    "The database is PostgreSQL: use its own tools, which copy it consistently while the "
    "daemons run — `pg_dump --format=custom --file=twin.dump DBNAME`, and `pg_restore "
    "--dbname=NEWDB twin.dump` into an empty database. " + KEY_NOTE
)


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database consistently, while the daemon runs",
        description="A consistent copy of the SQLite database (online backup API), written "
        "readable by you only. " + KEY_NOTE,
    )
    add_common(backup)
    backup.add_argument("path", type=Path, help="where to write the copy")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty database",
        description="Copies a `twin backup` file into the configured SQLite database, which "
        "must be empty (no file, or an empty one) and not served by a daemon.",
    )
    add_common(restore)
    restore.add_argument("path", type=Path, help="the backup file")
    restore.set_defaults(handler=cmd_restore)
    purge = commands.add_parser(
        "purge",
        help="remove message texts older than [storage] retention_days now",
        description="Removes the texts and transcripts of messages (and the texts of reply "
        "jobs and decided drafts) older than the retention; every row stays, so statistics "
        "do not change.",
    )
    add_common(purge)
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.add_argument(
        "--days", type=float, default=None, help="older than this (default: retention_days)"
    )
    purge.set_defaults(handler=cmd_purge)


def _database_file(settings: Any) -> Path:
    from twin.db.files import sqlite_path

    path = sqlite_path(settings.storage.url)
    if path is None:
        if settings.storage.url.startswith("postgresql"):
            raise StartupError(POSTGRES_NOTE)
        raise StartupError("the database is in memory: there is nothing to back up or restore")
    return path


def cmd_backup(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    source = _database_file(settings)
    if not source.exists():
        raise StartupError(f"no database at {source} yet: nothing to back up")
    target: Path = args.path
    if target.exists() and not args.force:
        raise StartupError(f"{target} exists: choose another path, or --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # sessions inside
    os.close(fd)
    live = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        live.backup(copy)  # pages copied consistently; restarted if the daemon writes meanwhile
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal / -shm
    finally:
        copy.close()
        live.close()
    _check(partial)
    partial.replace(target)
    print(f"Backed up {source} to {target} ({target.stat().st_size:,} bytes).")
    print(KEY_NOTE)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from twin import cli
    from twin.db.cluster import DaemonFileLock

    settings = cli.load(args)
    target = _database_file(settings)
    backup: Path = args.path
    if not backup.is_file():
        raise StartupError(f"no backup at {backup}")
    _check(backup)
    if target.exists() and target.stat().st_size > 0 and _has_tables(target):
        raise StartupError(
            f"{target} is not empty: restore into an empty database (move this one away first)"
        )
    for suffix in ("-wal", "-shm"):
        leftover = target.with_name(target.name + suffix)
        if leftover.exists():  # a moved database's journal would be replayed into the copy
            raise StartupError(f"{leftover} is left from another database: move it away too")
    lock = DaemonFileLock(target)
    lock.acquire()  # a daemon serving the file makes this fail with one line
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with (
            closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
    finally:
        lock.release()
    print(f"Restored {backup} into {target}. Start `twin run` with the same secret key.")
    asyncio.run(_upgrade(settings))
    return 0


async def _upgrade(settings: Any) -> None:
    """A backup from an older version gets the current schema."""
    from twin.db import migrate

    if not await migrate.is_up_to_date(settings.storage.url):
        await migrate.upgrade(settings.storage.url)


def _check(path: Path) -> None:
    """A twin database: its integrity holds and it has the schema's version."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            ok = db.execute("PRAGMA quick_check").fetchone()
            version = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StartupError(f"{path} is not a twin database: {exc}") from None
    if ok is None or ok[0] != "ok" or version is None:
        raise StartupError(f"{path} is not a complete twin database")


def _has_tables(path: Path) -> bool:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return bool(
            db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        )


def cmd_purge(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    days = settings.storage.retention_days if args.days is None else args.days
    if days <= 0:
        raise StartupError(
            "no retention: set [storage] retention_days (or --days N) to remove older texts"
        )
    return asyncio.run(_purge(settings, days, args.dry_run))


async def _purge(settings: Any, days: float, dry_run: bool) -> int:
    from twin.clock import SystemClock
    from twin.db.engine import database
    from twin.services.retention import Retention

    await _upgrade(settings)
    async with database(settings) as db:
        purged = await Retention(db.repo, SystemClock(), days).purge(dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    print(
        f"{verb} the texts of {purged.messages} messages, {purged.replies} replies and "
        f"{purged.drafts} drafts older than {days:g} days (statistics are kept)."
    )
    return 0
