"""Command line: `twin run | migrate | check-config | service-unit | login | style build`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
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

    for name, (helptext, register) in _EXTRA_COMMANDS.items():
        sub = commands.add_parser(name, help=helptext, description=helptext)
        _add_common(sub)
        register(sub)
    return parser


# Later layers (login, style) register their sub-commands here to keep this module the one CLI.
_EXTRA_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}


def register_command(
    name: str, helptext: str
) -> Callable[
    [Callable[[argparse.ArgumentParser], None]], Callable[[argparse.ArgumentParser], None]
]:
    def decorator(
        register: Callable[[argparse.ArgumentParser], None],
    ) -> Callable[[argparse.ArgumentParser], None]:
        _EXTRA_COMMANDS[name] = (helptext, register)
        return register

    return decorator


def load(args: argparse.Namespace) -> Settings:
    """Load settings and configure logging; ConfigError propagates to main()."""
    settings = load_settings(args.config)
    setup_logging(
        level=args.log_level or settings.logging.level,
        fmt=args.log_format or settings.logging.format,
        secrets=settings.secret_values(),
    )
    return settings


# --- commands ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from twin.app import create_app

    settings = load(args)
    host = args.host or settings.api.host
    port = settings.api.port if args.port is None else args.port
    log.info("twin %s starting; API on http://%s:%s", __version__, host, port)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log=logging.getLogger("twin.access"),
        print=_announce,
        handle_signals=True,
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


def main(argv: Sequence[str] | None = None) -> int:
    # Register the commands contributed by later layers (they import lazily inside handlers).
    _load_plugins()
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


def _load_plugins() -> None:
    import importlib

    for module in ("twin.adapters.telegram.cli", "twin.brain.cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
