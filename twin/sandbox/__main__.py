"""Run the sandbox standalone: ``python -m twin.sandbox --port 0 --key-out sandbox.pem``.

The first stdout line is ``port=<n>`` (the bound port, useful with --port 0); every issued
login code is printed as ``code phone=<digits> code=<code>``. Point a daemon at it with
``server = "127.0.0.1:<n>"``, ``dc_id`` (default 2) and ``rsa_public_key_file`` = --key-out.
Stop with Ctrl-C / SIGTERM; with --state the accounts, auth keys and messages survive restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from .crypto import ServerKey, default_server_key
from .server import SandboxServer


def _parse_user(spec: str) -> dict[str, str | None]:
    parts = spec.split(":")
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("expected PHONE:FIRST_NAME[:USERNAME[:PASSWORD]]")
    phone, first, *rest = parts
    return {
        "phone": phone,
        "first_name": first,
        "username": rest[0] if rest and rest[0] else None,
        "password": rest[1] if len(rest) > 1 and rest[1] else None,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m twin.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--dc-id", type=int, default=2)
    parser.add_argument("--key-out", type=Path, help="write the public key (PKCS#1 PEM) here")
    parser.add_argument("--private-key", type=Path,
                        help="PEM private key to use (created if missing); --state also keeps "
                             "the key, so this is only needed to share a key between servers")
    parser.add_argument("--fixed-code", help="issue this login code instead of random ones")
    parser.add_argument("--state", type=Path, help="load/save server state (pickle) here")
    parser.add_argument("--user", action="append", type=_parse_user, default=[],
                        metavar="PHONE:FIRST[:USERNAME[:PASSWORD]]",
                        help="create an account at start-up (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _load_key(path: Path | None) -> ServerKey | None:
    """None lets the server use the key stored with --state, or a fresh one."""
    if path is None:
        return None
    if path.exists():
        return ServerKey.from_private_pem(path.read_bytes())
    key = default_server_key()
    path.write_bytes(key.private_pem())
    path.chmod(0o600)
    return key


async def serve(args: argparse.Namespace) -> None:
    server = SandboxServer(dc_id=args.dc_id, key=_load_key(args.private_key),
                           fixed_code=args.fixed_code, state_path=args.state)
    server.on_code = lambda phone, code: print(f"code phone={phone} code={code}", flush=True)
    for spec in args.user:
        try:
            server.create_user(spec["phone"], spec["first_name"], username=spec["username"],
                               password=spec["password"])
        except Exception as exc:  # e.g. already present in --state
            logging.getLogger("twin.sandbox").warning("user %s not created: %s", spec, exc)
    await server.start(args.host, args.port)
    if args.key_out:
        server.write_public_key(args.key_out)
    print(f"port={server.port}", flush=True)
    print(f"sandbox listening on {server.host}:{server.port} dc={server.dc_id}", file=sys.stderr,
          flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
