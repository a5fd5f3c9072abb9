"""Command line: `twin run | migrate | check-config | service-unit | login | style build`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from twin import __version__
from twin.config import Settings, load_settings
from twin.errors import ConfigError, TwinError
from twin.logs import setup_logging

log = logging.getLogger("twin.cli")

EXIT_CONFIG = 2
SHUTDOWN_TIMEOUT = 8.0  # seconds; systemd's default TimeoutStopSec is 90, we promise 10


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="configuration file (default: ./config.toml if it exists)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="log as readable text or as JSON lines for journald (default: [logging] format)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=None,
        help="minimum level to log (default: [logging] level)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin",
        description="A self-hosted Telegram digital twin that answers your chats in your style.",
        epilog="Configuration: config.toml, overridden by TWIN_<SECTION>__<KEY> variables; "
        "secrets only from the environment. See README.md.",
    )
    parser.add_argument("--version", action="version", version=f"twin {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="start the daemon (database, Telegram, pipeline, HTTP API)",
        description="Start the daemon in the foreground. Stops gracefully on SIGTERM/SIGINT.",
    )
    _add_common(run)
    run.add_argument("--host", default=None, help="override [api] host")
    run.add_argument("--port", type=int, default=None, help="override [api] port (0 = any free)")
    run.set_defaults(handler=cmd_run)

    migrate = commands.add_parser(
        "migrate",
        help="upgrade the database schema (run after every update)",
        description="Apply Alembic migrations to [storage] url: upgrade to head by default.",
    )
    _add_common(migrate)
    target = migrate.add_mutually_exclusive_group()
    target.add_argument(
        "--revision", default="head", help="upgrade to this revision (default head)"
    )
    target.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    migrate.set_defaults(handler=cmd_migrate)

    check = commands.add_parser(
        "check-config",
        help="validate the configuration and print it with secrets masked",
        description="Exit 0 and print the effective configuration (TOML, secrets masked), "
        "or exit 2 with one line per problem.",
    )
    _add_common(check)
    check.set_defaults(handler=cmd_check_config)

    unit = commands.add_parser(
        "service-unit",
        help="print a hardened systemd unit for this installation",
        description="Print a systemd service unit; save it as /etc/systemd/system/twin.service.",
    )
    _add_common(unit)
    unit.add_argument("--user", default="twin", help="system user to run as (default twin)")
    unit.add_argument(
        "--env-file",
        default="/etc/twin/twin.env",
        help="EnvironmentFile= holding the TWIN_* secrets (default /etc/twin/twin.env)",
    )
    unit.add_argument(
        "--workdir",
        default=None,
        help="WorkingDirectory= (default: the current directory)",
    )
    unit.set_defaults(handler=cmd_service_unit)

    login = commands.add_parser(
        "login",
        help="log in to Telegram (asks for phone, code and 2FA password)",
        description="Log an account in interactively. Answers may also be piped on stdin, "
        "one per line. Stop `twin run` first, or log in through the API instead.",
    )
    _add_common(login)
    login.add_argument("--account", default="default", help="account name (default: default)")
    login.add_argument("--phone", help="phone number in international format (+…)")
    login.set_defaults(handler=cmd_login)

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
    _add_common(build)
    build.add_argument("--account", default="default", help="account name (default: default)")
    build.add_argument("--limit", type=int, default=2000, help="messages to read (default 2000)")
    build.add_argument("--restart", action="store_true", help="start over instead of resuming")
    build.set_defaults(handler=cmd_style_build)
    show = style_commands.add_parser("show", help="print the stored profile")
    _add_common(show)
    show.add_argument("--account", default="default", help="account name (default: default)")
    show.set_defaults(handler=cmd_style_show)
    return parser


def load(args: argparse.Namespace) -> Settings:
    """Load settings and configure logging; ConfigError propagates to main()."""
    settings = load_settings(args.config)
    setup_logging(
        level=args.log_level or settings.logging.level,
        fmt=args.log_format or settings.logging.format,
        secrets=settings.secret_values(),
        sdk_debug=settings.logging.sdk_debug,
    )
    return settings


# --- commands ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from twin.api.server import run_app
    from twin.app import create_app

    settings = load(args)
    host = args.host or settings.api.host
    port = settings.api.port if args.port is None else args.port
    log.info("twin %s starting; API on http://%s:%s", __version__, host, port)
    run_app(  # web.run_app, with aiohttp's own error answers in the API's error shape
        create_app(settings),
        host=host,
        port=port,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log=logging.getLogger("twin.access"),
        print=_announce,
    )
    log.info("twin stopped")
    return 0


def _announce(text: str) -> None:
    # aiohttp prints "======== Running on http://… ========"; tests and operators read the port.
    for line in text.splitlines():
        if line.strip():
            log.info("%s", line.strip("= "))
    sys.stderr.flush()


def cmd_migrate(args: argparse.Namespace) -> int:
    from twin.db import migrate

    settings = load(args)
    url = settings.storage.url
    if args.downgrade:
        asyncio.run(migrate.downgrade(url, args.downgrade))
        print(f"database downgraded to {args.downgrade}")
    else:
        asyncio.run(migrate.upgrade(url, args.revision))
        print(f"database at {asyncio.run(migrate.current(url)) or 'base'}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    import tomli_w

    settings = load(args)
    print(tomli_w.dumps(_drop_none(settings.masked())), end="")
    return 0


def _drop_none(value: Any) -> Any:
    # TOML has no null; an unset optional key is simply absent.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def cmd_service_unit(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or os.getcwd()).resolve()
    config = (args.config or workdir / "config.toml").resolve()
    sessions = workdir / "sessions"
    exec_start = shlex.join([sys.executable, "-m", "twin", "run", "--config", str(config)])
    print(
        f"""[Unit]
Description=twin - Telegram digital twin
Documentation=file://{workdir}/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={args.user}
WorkingDirectory={workdir}
EnvironmentFile={args.env_file}
ExecStartPre={shlex.join([sys.executable, "-m", "twin", "migrate", "--config", str(config)])}
ExecStart={exec_start} --log-format json
Restart=on-failure
RestartSec=5
TimeoutStopSec=15
KillSignal=SIGTERM

# Hardening: the daemon only needs to write its own state directory.
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={sessions}
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true
UMask=0077

[Install]
WantedBy=multi-user.target"""
    )
    return 0


@asynccontextmanager
async def _runtime(settings: Settings) -> AsyncIterator[tuple[Any, Any, Any]]:
    """Database (migrated) + Telegram accounts, for commands that run outside `twin run`.

    The accounts take in no updates: a message that arrives while a command runs is left to
    the daemon, which catches up on it (the stored update state is not moved)."""
    from twin.db import migrate
    from twin.db.engine import database
    from twin.services.accounts import TelegramAccounts
    from twin.services.directory import AccountDirectory

    if not await migrate.is_up_to_date(settings.storage.url):
        await migrate.upgrade(settings.storage.url)
    async with database(settings) as db:
        directory = AccountDirectory(db.repo)
        accounts = TelegramAccounts(settings, db.repo, directory)
        try:
            yield db, accounts, directory
        finally:
            await accounts.stop()


async def _ask(prompt: str, *, secret: bool = False) -> str:
    def read() -> str:
        if secret and sys.stdin.isatty():
            import getpass

            return getpass.getpass(prompt)
        print(prompt, end="", flush=True, file=sys.stderr)
        line = sys.stdin.readline()
        if not line:
            raise TwinError("no answer on standard input")
        return line.strip()

    return await asyncio.to_thread(read)


def cmd_login(args: argparse.Namespace) -> int:
    return asyncio.run(_login(load(args), args.account, args.phone))


async def _login(settings: Settings, name: str, phone: str | None) -> int:
    from twin.errors import InvalidInput

    async with _runtime(settings) as (db, accounts, _):
        account = await accounts.for_login(name)
        if account.authorized:
            print(f"Account '{name}' is already logged in as {account.me.name}.")
            return 0
        phone = phone or await _ask("Phone number (international format, e.g. +15551234567): ")
        sent = await account.request_code(phone)
        print(f"Telegram sent a login code ({sent.type}).", file=sys.stderr)
        for attempt in range(3):
            code = await _ask("Login code: ")
            try:
                result = await account.verify_code(phone, code)
                break
            except InvalidInput as exc:
                if exc.field != "code" or attempt == 2:
                    raise
                print(f"{exc} - try again.", file=sys.stderr)
        if result.status == "password_required":
            hint = f" (hint: {result.hint})" if result.hint else ""
            result = await account.submit_password(
                await _ask(f"Two-step verification password{hint}: ", secret=True)
            )
        me = account.me
        await db.repo.update_account(
            name,
            status="authorized",
            tg_user_id=me.id,
            username=me.username,
            first_name=me.name,
            phone=me.phone,
        )
        print(f"Logged in as {me.name}" + (f" (@{me.username})" if me.username else "") + ".")
        return 0


def cmd_style_build(args: argparse.Namespace) -> int:
    return asyncio.run(_style_build(load(args), args.account, args.limit, args.restart))


async def _style_build(settings: Settings, name: str, limit: int, restart: bool) -> int:
    from twin.domain.style import render_style
    from twin.errors import Unauthorized
    from twin.services.style import build_style

    def progress(read: int, done: int, total: int) -> None:
        width = 30
        filled = int(width * min(read, limit) / max(limit, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r[{bar}] {read}/{limit} messages, {done}/{total} chats", end="", file=sys.stderr)

    async with _runtime(settings) as (db, accounts, directory):
        account = await accounts.get(name)
        if not account.authorized:
            raise Unauthorized(f"account '{name}' is not logged in: run `twin login` first")
        account_id = await directory.id_of(name)
        profile = await build_style(
            account, db.repo, account_id, limit=limit, restart=restart, progress=progress
        )
        print(file=sys.stderr)
        print(render_style(profile))
    return 0


def cmd_style_show(args: argparse.Namespace) -> int:
    return asyncio.run(_style_show(load(args), args.account))


async def _style_show(settings: Settings, name: str) -> int:
    from twin.db.engine import database
    from twin.domain.style import render_style
    from twin.services.style import stored_profile

    async with database(settings) as db:
        account = await db.repo.get_account(name)
        profile = await stored_profile(db.repo, account.id)
    if profile is None:
        print("No style profile yet: run `twin style build`.")
        return 1
    print(render_style(profile))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
