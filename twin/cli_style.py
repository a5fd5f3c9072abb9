"""`twin style build | show`: learn the owner's writing style from their own messages.

Like `twin login`, these run outside the daemon on the same database (twin.cli.runtime).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.config import Settings


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    style = commands.add_parser(
        "style",
        help="learn the owner's writing style from their own messages",
        description="`twin style build` reads your own messages through Telegram and stores a "
        "style profile the replies imitate; `twin style show` prints it.",
    )
    style_commands = style.add_subparsers(dest="style_command", metavar="ACTION", required=True)
    build = style_commands.add_parser(
        "build",
        help="read your messages and (re)build the profile (resumable)",
        description="Resumes an interrupted build unless --restart is given.",
    )
    add_common(build)
    build.add_argument("--account", default="default", help="account name (default: default)")
    build.add_argument("--limit", type=int, default=2000, help="messages to read (default 2000)")
    build.add_argument("--restart", action="store_true", help="start over instead of resuming")
    build.set_defaults(handler=cmd_style_build)
    show = style_commands.add_parser("show", help="print the stored profile")
    add_common(show)
    show.add_argument("--account", default="default", help="account name (default: default)")
    show.set_defaults(handler=cmd_style_show)


def cmd_style_build(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_style_build(settings, args.account, args.limit, args.restart))


async def _style_build(settings: Settings, name: str, limit: int, restart: bool) -> int:
    from twin.domain.style import render_style
    from twin.errors import Unauthorized
    from twin.services.policy import behaviour_of
    from twin.services.style import ScanProgress, build_style, stored_style

    last: list[ScanProgress] = []

    def progress(state: ScanProgress) -> None:
        last[:] = [state]
        width = 30
        filled = int(width * min(state.scanned, state.total) / max(state.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"\r[{bar}] scanned {state.scanned:,} of {state.total:,} messages, "
            f"{state.own:,} of yours (limit {state.limit:,}), "
            f"chat {state.chats_done}/{state.chats}",
            end="",
            file=sys.stderr,
        )

    from twin import cli

    async with cli.runtime(settings) as (db, accounts, directory):
        account = await accounts.get(name)
        if not account.authorized:
            raise Unauthorized(f"account '{name}' is not logged in: run `twin login` first")
        account_id = await directory.id_of(name)
        overrides = await db.repo.behaviour_overrides(account_id)
        timezone = behaviour_of(settings, overrides).schedule.timezone  # the owner's hours
        profile = await build_style(
            account,
            db.repo,
            account_id,
            limit=limit,
            restart=restart,
            progress=progress,
            timezone=timezone,
        )
        print(file=sys.stderr)
        state = last[0] if last else None
        why = (
            "the --limit was reached"
            if state is not None and state.own >= state.limit
            else "every private chat was read"
        )
        print(
            f"Style profile complete ({why}): {profile.message_count:,} of your messages.",
            file=sys.stderr,
        )
        print(render_style(profile))
        stored = await stored_style(db.repo, account_id)
        if stored is not None:
            print(stored[1].describe())
    return 0


def cmd_style_show(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_style_show(settings, args.account))


async def _style_show(settings: Settings, name: str) -> int:
    from twin.db.engine import database
    from twin.domain.style import render_style
    from twin.services.style import stored_style

    async with database(settings) as db:
        account = await db.repo.get_account(name)
        stored = await stored_style(db.repo, account.id)
    if stored is None:
        print("No style profile yet: run `twin style build`.")
        return 1
    print(render_style(stored[0]))
    print(stored[1].describe())
    return 0
