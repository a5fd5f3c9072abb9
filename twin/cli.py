"""Command line: `twin run | migrate | check-config | service-unit | demo`; `twin login` is in
twin/cli_login.py, `twin accounts | status | logout` in twin/cli_accounts.py, `twin keys` in
twin/cli_keys.py, `twin style build | show` in twin/cli_style.py, `twin knowledge` in
twin/cli_knowledge.py, `twin backup | restore | purge` in twin/cli_storage.py."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from twin import (
    __version__,
    cli_accounts,
    cli_keys,
    cli_knowledge,
    cli_login,
    cli_storage,
    cli_style,
)
from twin.config import Settings, find_config_file, load_settings
from twin.errors import ConfigError, StartupError, TwinError
from twin.logs import setup_logging

log = logging.getLogger("twin.cli")

T = TypeVar("T")

EXIT_CONFIG = 2  # also a StartupError; the systemd unit's RestartPreventExitStatus=2
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
        description="Print which config file was read and the effective configuration (TOML, "
        "secrets masked, paths absolute), with a warning for each thing `twin run` will not do "
        "(no Telegram credentials, no API token, no LLM key, a missing file…); exit 0. Exit 2 "
        "with one line per problem when the configuration is invalid, when `twin run` would "
        "refuse to start (a data directory it cannot write…), or, with --strict, on warnings.",
    )
    _add_common(check)
    check.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit status 2)"
    )
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
        help="WorkingDirectory= (default: the state directory, /var/lib/twin)",
    )
    unit.set_defaults(handler=cmd_service_unit)


    cli_login.add_commands(commands, _add_common)
    cli_style.add_commands(commands, _add_common)
    cli_accounts.add_commands(commands, _add_common)
    cli_keys.add_commands(commands, _add_common)
    cli_storage.add_commands(commands, _add_common)
    cli_knowledge.add_commands(commands, _add_common)

    demo = commands.add_parser(
        "demo",
        help="try the twin without a Telegram account (a sandbox server, you as a contact)",
        description="Starts a sandbox Telegram server in this process, logs the twin in as its "
        "owner and lets you write to it as a contact, showing its read receipts, typing and "
        "replies. Uses [llm] from --config when it is usable, else a built-in echo model. "
        "Nothing real is contacted; everything is stored in a temporary directory.",
    )
    demo.add_argument(
        "--config", type=Path, default=None, metavar="PATH", help="read [llm] and [twin] from here"
    )
    demo.add_argument(
        "--script",
        nargs="?",
        const="-",
        metavar="FILE",
        help="play a conversation instead (one line per message; without FILE a built-in one); "
        "exit 0 when every line got a reply",
    )
    demo.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each scripted reply"
    )
    demo.set_defaults(handler=cmd_demo)
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
    # Before anything else starts: a daemon that cannot keep its files or serve its port says
    # so in one line and exits 2, without opening the database or contacting Telegram.
    prepare_storage(settings)
    from twin.db.cluster import daemon_lock

    lock = daemon_lock(settings.storage.url)  # one daemon per SQLite file (PostgreSQL: many)
    if lock is not None:
        lock.acquire()
    sockets = listen(host, port)
    port = sockets[0].getsockname()[1]
    # where it really listens (a port of 0, --host/--port): the address other processes of a
    # cluster reach it at, unless [cluster] advertise_url says otherwise
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"host": host, "port": port})}
    )
    log.info("twin %s starting; API on http://%s:%s", __version__, host, port)
    run_app(  # web.run_app, with aiohttp's own error answers in the API's error shape
        create_app(settings),
        sock=sockets,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log=logging.getLogger("twin.access"),
        print=_announce,
    )
    if lock is not None:
        lock.release()
    log.info("twin stopped")
    return 0


def prepare_storage(settings: Settings) -> None:
    """Create the data directory if missing; StartupError when twin cannot write it, or write
    its database file, or read its key file (the first problem found)."""
    from twin.db.files import storage_problems

    problems = storage_problems(settings, create=True)
    if problems:
        raise StartupError(problems[0])


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for `host`:`port` (every address the name resolves to, as aiohttp
    would bind them); StartupError naming the address when one cannot be bound."""
    from twin.db.files import reason

    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {where}: {reason(exc)}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one free port for every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise StartupError(f"cannot listen on {where}: {reason(exc)}") from None
    return sockets


def _announce(text: str) -> None:
    # aiohttp prints "======== Running on http://… ========"; tests and operators read the port.
    for line in text.splitlines():
        if line.strip():
            log.info("%s", line.strip("= "))
    sys.stderr.flush()


def cmd_migrate(args: argparse.Namespace) -> int:
    from twin.db import migrate

    settings = load(args)
    prepare_storage(settings)
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

    from twin.config_check import check

    config_file = find_config_file(args.config)
    settings = load(args)
    if config_file is not None:
        print(f"# config file: {config_file}")
    else:
        print(
            f"# no config file ({Path('config.toml').absolute()} not found): defaults and the "
            "environment; relative paths are relative to the current directory"
        )
    print(f"# data directory: {settings.storage.data_dir}")
    print(tomli_w.dumps(_drop_none(settings.masked())), end="")
    findings = check(settings)
    errors = findings.fatal + (findings.warnings if args.strict else [])
    for problem in errors:
        print(f"config error: {problem}", file=sys.stderr)
    if not args.strict:
        for problem in findings.warnings:
            print(f"warning: {problem}", file=sys.stderr)
    return EXIT_CONFIG if errors else 0


def _drop_none(value: Any) -> Any:
    # TOML has no null; an unset optional key is simply absent.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def cmd_service_unit(args: argparse.Namespace) -> int:
    config = Path(os.path.abspath(args.config or "config.toml"))
    if not config.exists():
        print(f"warning: {config} does not exist yet; the service needs it", file=sys.stderr)
    workdir = Path(os.path.abspath(args.workdir)) if args.workdir else "%S/twin"
    twin = [sys.executable, "-m", "twin"]
    print(
        f"""[Unit]
Description=twin - Telegram digital twin
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={args.user}
EnvironmentFile={args.env_file}
# /var/lib/twin, created for User= (mode 0700) and its path given to twin as $STATE_DIRECTORY:
# the default data directory (database and key file) unless [storage] data_dir says otherwise.
StateDirectory=twin
StateDirectoryMode=0700
WorkingDirectory={workdir}
# `twin run` upgrades the database schema itself before it starts serving.
ExecStart={shlex.join([*twin, "run", "--config", str(config)])} --log-format json
Restart=on-failure
RestartSec=5
# Exit status 2: invalid configuration, a data directory or key file twin cannot use, a port in
# use. Restarting cannot fix those: the unit stops and the journal says why, once.
RestartPreventExitStatus=2
TimeoutStopSec=15
KillSignal=SIGTERM

# Hardening: the daemon only writes its state directory and talks TCP (Telegram, providers, API).
NoNewPrivileges=true
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=true
RestrictRealtime=true
RestrictSUIDSGID=true
LockPersonality=true
SystemCallArchitectures=native
UMask=0077

[Install]
WantedBy=multi-user.target"""
    )
    return 0


@asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[tuple[Any, Any, Any]]:
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


def cmd_demo(args: argparse.Namespace) -> int:
    from twin.demo import BUILT_IN_SCRIPT, run_demo
    from twin.demo.session import quiet_logging

    script: list[str] | None = None
    if args.script == "-":
        script = list(BUILT_IN_SCRIPT)
    elif args.script is not None:
        lines = Path(args.script).read_text(encoding="utf-8").splitlines()
        script = [line.strip() for line in lines if line.strip()]
    quiet_logging()
    return asyncio.run(run_demo(script=script, config=args.config, timeout=args.timeout))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
