"""`twin keys create | list | revoke`: named API keys from the command line (on the database,
whether `twin run` is up or not). `create` prints the key once; only its hash is stored.
`twin app-link`: a one-time link that signs the admin app in (twin.services.app_sessions)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twin.domain.scopes import SCOPES


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    keys = commands.add_parser(
        "keys", help="API keys: create, list, revoke", description="Named API keys with scopes."
    )
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it (once)")
    add_common(create)
    create.add_argument("--name", required=True, help="a unique name (letters, digits, _.-)")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="what the key may call (repeat for several)",
    )
    create.add_argument("--account", help="bind it to this account (it sees no other)")
    create.add_argument("--twin", help="bind a chat key to this twin")
    create.set_defaults(handler=cmd_keys)
    listing = actions.add_parser("list", help="the keys (never their secrets)")
    add_common(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    listing.set_defaults(handler=cmd_keys)
    revoke = actions.add_parser("revoke", help="revoke a key")
    add_common(revoke)
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_keys)
    link = commands.add_parser(
        "app-link",
        help="print a one-time link that signs you in to the admin app",
        description="The link works once, for --minutes; only its hash is stored.",
    )
    add_common(link)
    link.add_argument("--minutes", type=float, default=15.0, help="how long it works (15)")
    link.add_argument(
        "--base-url", help="the app's address as your browser reaches it (default: [api] host "
        "and port, http)"
    )
    link.set_defaults(handler=cmd_app_link)


def cmd_keys(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_keys(settings, args))


async def _keys(settings: object, args: argparse.Namespace) -> int:
    from twin import cli
    from twin.clock import SystemClock
    from twin.services.events import EventLog
    from twin.services.keys import ApiKeys

    async with cli.runtime(settings) as (db, _accounts, _directory):  # type: ignore[arg-type]
        api_keys = ApiKeys(db.repo, EventLog(db.repo), SystemClock())
        if args.keys_command == "create":
            created = await api_keys.create(
                args.name, args.scope, account=args.account, twin=args.twin
            )
            print(created.key)
            print(
                f"API key '{args.name}' ({', '.join(created.record.scopes)}) created: it is shown "
                "this once, keep it now.",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            for record in await api_keys.list():
                row = {
                    "name": record.name,
                    "prefix": record.prefix,
                    "scopes": record.scopes,
                    "account": record.account,
                    "twin": record.twin,
                    "created_at": record.created_at.isoformat(),
                    "last_used_at": record.last_used_at and record.last_used_at.isoformat(),
                    "revoked_at": record.revoked_at and record.revoked_at.isoformat(),
                }
                if args.json:
                    print(json.dumps(row))
                else:
                    state = "revoked" if record.revoked_at else "active"
                    if record.revoked_at:
                        state = f"revoked {_when(record.revoked_at)}"
                    print(
                        f"{record.name:<20} {record.prefix}…  {','.join(record.scopes):<20} "
                        f"account={record.account or '-'} twin={record.twin or '-'} "
                        f"created {_when(record.created_at)}, last used "
                        f"{_when(record.last_used_at) if record.last_used_at else 'never'}, "
                        f"{state}"
                    )
        else:
            await api_keys.revoke(args.name)
            print(f"API key '{args.name}' revoked.")
    return 0


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_app_link(args: argparse.Namespace) -> int:
    from twin import cli

    if not 0 < args.minutes <= 24 * 60:
        print("--minutes must be more than 0 and at most 1440", file=sys.stderr)
        return 2
    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_app_link(settings, args.minutes, args.base_url))


async def _app_link(settings: Any, minutes: float, base_url: str | None) -> int:
    from twin.clock import SystemClock
    from twin.db import migrate
    from twin.db.engine import database
    from twin.services.app_sessions import AppSessions

    if not await migrate.is_up_to_date(settings.storage.url):
        await migrate.upgrade(settings.storage.url)
    async with database(settings) as db:
        api = settings.api
        sessions = AppSessions(
            db.repo,
            SystemClock(),
            idle_minutes=api.session_idle_minutes,
            max_days=api.session_max_days,
            tokens=frozenset(),
        )
        token = await sessions.create_link(minutes)
    if base_url is None:
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
        host = f"[{host}]" if ":" in host else host
        base_url = f"http://{host}:{api.port}"
    # the token rides in the fragment: browsers never send it to a server or in a Referer
    print(f"{base_url.rstrip('/')}/app/#login={token}")
    print(f"It signs in once, within {minutes:g} minutes.", file=sys.stderr)
    return 0
