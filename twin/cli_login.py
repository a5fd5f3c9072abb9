"""`twin login`: log an account in to Telegram from the terminal (phone, code, two-step
password), asking again for an answer Telegram refuses. Runs outside the daemon on the same
database (twin.cli.runtime)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from twin.errors import TwinError

if TYPE_CHECKING:
    from twin.config import Settings

T = TypeVar("T")

LOGIN_TRIES = 3  # a wrong phone, code or password is asked for again, this many times in all


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    login = commands.add_parser(
        "login",
        help="log in to Telegram (asks for phone, code and 2FA password)",
        description="Log an account in interactively. Answers may also be piped on stdin, "
        "one per line. Stop `twin run` first, or log in through the API instead.",
    )
    add_common(login)
    login.add_argument("--account", default="default", help="account name (default: default)")
    login.add_argument(
        "--phone", type=_phone_argument, help="phone number in international format (+…)"
    )
    login.add_argument(
        "--force",
        action="store_true",
        help="log in again although the account is logged in (its session is ended first)",
    )
    login.set_defaults(handler=cmd_login)


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


def _phone_argument(text: str) -> str:
    from twin.domain.phones import PHONE_RULE, parse_phone

    try:
        parse_phone(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {PHONE_RULE}") from None
    return text


def cmd_login(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_login(settings, args.account, args.phone, force=args.force))


async def _until_accepted(
    field: str, ask: Callable[[], Awaitable[str]], use: Callable[[str], Awaitable[T]]
) -> T:
    """`use(await ask())`, asked again (LOGIN_TRIES in all) while the answer for `field` is
    refused; any other error, or the last refusal, propagates."""
    from twin.errors import InvalidInput

    for attempt in range(LOGIN_TRIES):
        answer = await ask()
        try:
            return await use(answer)
        except InvalidInput as exc:
            if exc.field != field or attempt == LOGIN_TRIES - 1:
                raise
            print(f"{exc} - try again.", file=sys.stderr)
    raise AssertionError("unreachable")  # pragma: no cover


async def _login(settings: Settings, name: str, phone: str | None, *, force: bool = False) -> int:
    from twin import cli
    from twin.domain.phones import PHONE_RULE, parse_phone
    from twin.errors import InvalidInput

    async with cli.runtime(settings) as (_, accounts, _directory):
        account = await accounts.for_login(name)
        if account.authorized:
            if not force:
                print(
                    f"Account '{name}' is already logged in as {account.me.name}; "
                    "`twin login --force` logs in again, ending this session."
                )
                return 0
            await account.logout()
            print(f"Logged out of '{name}' (--force).", file=sys.stderr)
            account = await accounts.for_login(name)

        async def ask_phone() -> str:
            if phone is not None:  # --phone: already checked; a refusal by Telegram is final
                return phone
            return await _ask("Phone number (international format, e.g. +15551234567): ")

        async def request_code(text: str) -> str:
            try:
                digits = parse_phone(text)
            except ValueError:
                raise InvalidInput("phone", f"not {PHONE_RULE}") from None
            sent = await account.request_code("+" + digits)
            print(f"Telegram sent a login code ({sent.type}).", file=sys.stderr)
            return "+" + digits

        if phone is not None:
            number = await request_code(phone)
        else:
            number = await _until_accepted("phone", ask_phone, request_code)
        result = await _until_accepted(
            "code",
            lambda: _ask("Login code: "),
            lambda code: account.verify_code(number, code),
        )
        if result.status == "password_required":
            hint = f" (hint: {result.hint})" if result.hint else ""
            await _until_accepted(
                "password",
                lambda: _ask(f"Two-step verification password{hint}: ", secret=True),
                account.submit_password,
            )
        me = account.me  # its account row was updated as it logged in
        print(f"Logged in as {me.name}" + (f" (@{me.username})" if me.username else "") + ".")
        return 0
