"""The files twin keeps on disk: where a SQLite URL's database file is, and whether the data
directory, the database file and the key file can be used by the user twin runs as.

`storage_problems` is checked before anything starts (the CLI turns a problem into one line and
exit status 2), so a daemon started by the wrong user, or on a directory it cannot write, says
so once instead of failing half-way (a read-only database, an unreadable key) and restarting.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from twin.config import Settings


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (as given: maybe relative); None for other backends
    and in-memory databases."""
    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or parsed.query.get("mode") == "memory"
    ):
        return None
    return Path(database).expanduser()


def with_sqlite_path(url: str, path: Path) -> str:
    """`url` naming the database file `path` instead."""
    return make_url(url).set(database=str(path)).render_as_string(hide_password=False)


def storage_problems(settings: Settings, *, create: bool) -> list[str]:
    """What keeps twin from using its files, one line each: the directories of the SQLite
    database and of the key file (created 0700 when `create`, else only checked that they can
    be), the database file and its -wal/-shm files (read and write), the key file (read)."""
    problems: list[str] = []
    directories: list[Path] = []
    database = sqlite_path(settings.storage.url)
    if database is not None:
        directories.append(database.parent)
    key_file = None
    secret = settings.security.secret_key
    if secret is None or not secret.get_secret_value():
        key_file = settings.security.key_file.expanduser()
        directories.append(key_file.parent)
    for directory in dict.fromkeys(directories):
        problem = _directory_problem(directory, create=create)
        if problem:
            problems.append(problem)
    if problems:
        return problems
    if database is not None:
        for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
            if path.exists() and not os.access(path, os.R_OK | os.W_OK):
                problems.append(f"database file {path} is not readable and writable by {_user()}")
    if key_file is not None and key_file.exists():
        try:
            with key_file.open("rb"):
                pass
        except OSError as exc:
            problems.append(f"cannot read key file {key_file}: {reason(exc)}")
    return problems


def _directory_problem(directory: Path, *, create: bool) -> str | None:
    try:
        is_dir = stat.S_ISDIR(directory.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_dir = None  # missing (maybe below a file: creating it says so)
    except OSError as exc:
        return f"cannot use data directory {directory}: {reason(exc)}"
    if is_dir:
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"data directory {directory} is not writable by {_user()}"
        return None
    if is_dir is not None:
        return f"data directory {directory} is not a directory"
    if create:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create data directory {directory}: {reason(exc)}"
        return None
    ancestor = directory.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot create data directory {directory}: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot create data directory {directory}: {ancestor} is not writable by {_user()}"
    return None


def _user() -> str:
    uid = os.geteuid()
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"


def reason(exc: OSError) -> str:
    """`exc`'s strerror as the tail of a sentence ("permission denied")."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
