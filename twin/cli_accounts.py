"""`twin accounts | status | logout`: the owner's accounts from the command line.

They read the database directly (like `twin login`), so they work whether `twin run` is up or
not; `twin status` also asks a running daemon's token-free `GET /ready` how it is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.config import Settings
    from twin.services.account_admin import AccountInfo

READY_TIMEOUT = 3.0  # seconds to wait for a running daemon's /ready
EXIT_NOT_READY = 1
EXIT_NOT_RUNNING = 3  # as `systemctl status` for a unit that is not active

_LOGIN = {
    "connected": "logged in",
    "connecting": "logged in",
    "offline": "logged in",
    "awaiting_code": "login under way",
    "logged_out": "logged out",
    "not_logged_in": "not logged in",
}


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    accounts = commands.add_parser(
        "accounts",
        help="list the Telegram accounts (name, phone, who, logged in or not)",
        description="Lists every account in the database. Creates and connects nothing.",
    )
    add_common(accounts)
    accounts.set_defaults(handler=cmd_accounts)

    status = commands.add_parser(
        "status",
        help="is the daemon running and ready; the database; each account",
        description="Checks the database and its schema, lists the accounts, and asks the "
        "daemon at [api] host:port for GET /ready. Exit 0: running and ready; 1: running, not "
        "ready (or the database is unreachable); 3: not running.",
    )
    add_common(status)
    status.set_defaults(handler=cmd_status)

    logout = commands.add_parser(
        "logout",
        help="log an account out of Telegram and forget its session",
        description="Ends the account's authorization at Telegram and forgets its session; its "
        "history stays. --purge also deletes the account and all its data. Same as "
        "DELETE /accounts/{name} on a running daemon.",
    )
    add_common(logout)
    logout.add_argument("--account", default="default", help="account name (default: default)")
    logout.add_argument(
        "--purge", action="store_true", help="also delete the account and all its data"
    )
    logout.set_defaults(handler=cmd_logout)


def _table(infos: list[AccountInfo]) -> list[str]:
    if not infos:
        return ["No accounts yet: `twin login` creates one."]
    rows = [("NAME", "PHONE", "USER", "LOGIN")]
    for info in infos:
        user = f"@{info.username}" if info.username else str(info.user_id or "-")
        rows.append((info.name, info.phone or "-", user, _LOGIN[info.status]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


async def _stored_accounts(settings: Settings) -> list[AccountInfo]:
    from twin.db.engine import database
    from twin.services.account_admin import AccountAdmin
    from twin.services.directory import AccountDirectory
    from twin.services.events import EventLog

    async with database(settings) as db:
        admin = AccountAdmin(db.repo, AccountDirectory(db.repo), EventLog(db.repo), None)
        return await admin.list()


def cmd_accounts(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    for line in _table(asyncio.run(_stored_accounts(settings))):
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from twin import cli
    from twin.config import find_config_file

    config_file = find_config_file(args.config)
    settings = cli.load(args)
    print(f"config: {config_file or 'no config file (defaults and the environment)'}")
    return asyncio.run(_status(settings))


async def _status(settings: Settings) -> int:
    from twin.db import migrate

    try:
        current = await migrate.is_up_to_date(settings.storage.url)
    except Exception as exc:  # any driver's error: say it, do not crash
        print(f"database: unreachable ({type(exc).__name__}: {exc})")
        database_ok = False
    else:
        print("database: ok" + ("" if current else " (schema not up to date: `twin migrate`)"))
        database_ok = True
        for line in _table(await _stored_accounts(settings)):
            print(f"  {line}")
    ready = await _daemon_ready(settings)
    if ready is None:
        print(f"daemon: not running at {_api_url(settings)}")
        return EXIT_NOT_RUNNING
    state = "ready" if ready.get("status") == "ready" else "not ready"
    print(f"daemon: running at {_api_url(settings)}, {state} (version {ready.get('version')})")
    for link in ready.get("telegram") or []:
        print(f"  telegram {link.get('account')}: {link.get('status')}")
    for component in ready.get("dependencies") or []:
        print(f"  {component.get('name')}: {component.get('status')}")
    return 0 if state == "ready" and database_ok else EXIT_NOT_READY


def _api_url(settings: Settings) -> str:
    host = settings.api.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.api.port}"


async def _daemon_ready(settings: Settings) -> dict[str, Any] | None:
    """The daemon's /ready document, or None when nothing answers there."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{_api_url(settings)}/ready") as response,
        ):
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def cmd_logout(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_logout(settings, args.account, purge=args.purge))


async def _logout(settings: Settings, name: str, *, purge: bool) -> int:
    from twin import cli
    from twin.services.account_admin import AccountAdmin
    from twin.services.events import EventLog

    async with cli.runtime(settings) as (db, accounts, directory):
        admin = AccountAdmin(db.repo, directory, EventLog(db.repo), accounts)
        removed = await admin.remove(name, purge=purge)
    done = "deleted with all its data" if removed.purged else "logged out; its history is kept"
    ended = "" if removed.telegram_logged_out else " (no live Telegram session to end)"
    print(f"Account '{name}' {done}{ended}.")
    return 0
