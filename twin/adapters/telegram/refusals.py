"""The one translation of Telethon's errors into domain errors, keeping Telegram's reason.

Telethon turns an `rpc_error` into a class by its *message* (`errors.rpc_message_to_error`), so
the message ("USER_IS_BLOCKED", "FLOOD_WAIT_30") decides what a refusal means; the code only
matters for messages Telethon does not know. The tables below are therefore keyed by Telegram's
messages, and every refusal keeps its message (`TelegramRefused.rpc_error`) for the log line, the
API's error details and a failed reply's reason.

    login errors (phone, code, password)     → InvalidInput / Conflict   422 / 409
    FLOOD_WAIT_X, SLOWMODE_WAIT_X, code 420  → RateLimited(retry_after)  429 + Retry-After
    401 (AUTH_KEY_UNREGISTERED, …)           → Unauthorized              401
    chat not valid for this account          → ChatInvalid               422
    text refused (empty, too long)           → InvalidInput("text")      422
    chat/user/message no longer exists       → ChatGone                  404
    not allowed (blocked, privacy, rights)   → TelegramForbidden         403
    5xx, -503 Timeout, connection errors     → TelegramUnavailable       503 (transient)
    any other refusal (400, 406, unknown)    → TelegramRefused           502 upstream_error

Everything but RateLimited, TelegramUnavailable (and Unauthorized, which a reconnect may fix) is
non-transient: the reply pipeline fails the reply at once with the reason instead of retrying.

The account's methods apply it with one context manager around their requests:

    with rpc_errors(self.name):
        await self.client(request)
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from telethon import errors
from telethon.errors import rpcerrorlist

from twin.errors import (
    ChatGone,
    ChatInvalid,
    Conflict,
    InvalidInput,
    RateLimited,
    TelegramForbidden,
    TelegramRefused,
    TelegramUnavailable,
    TwinError,
    Unauthorized,
)

log = logging.getLogger("twin.telegram")

# The request names a chat (peer) Telegram does not accept for this account: a wrong id or access
# hash, a username nobody uses, a chat the account is not in. Like an unresolvable chat reference
# caught before any request, the request's `chat` is at fault (422).
CHAT_INVALID = frozenset(
    {
        "PEER_ID_INVALID",
        "PEER_ID_NOT_SUPPORTED",
        "CHAT_ID_INVALID",
        "CHANNEL_INVALID",
        "USER_ID_INVALID",
        "USERNAME_INVALID",
        "USERNAME_NOT_OCCUPIED",
    }
)
# The text itself is refused: empty to Telegram (only whitespace it strips) or too long in its
# own measure (UTF-16 units, after entities): the request's `text` is at fault (422).
TEXT_INVALID = frozenset({"MESSAGE_EMPTY", "MESSAGE_TOO_LONG"})
# What the request names existed and does not any more (404).
GONE = frozenset({"INPUT_USER_DEACTIVATED", "MSG_ID_INVALID", "MESSAGE_ID_INVALID"})
# The account may not do this (403). Telegram files some of these under 400, some under 403;
# every code-403 message is forbidden too.
FORBIDDEN = frozenset(
    {
        "USER_IS_BLOCKED",
        "YOU_BLOCKED_USER",
        "CHAT_WRITE_FORBIDDEN",
        "CHAT_ADMIN_REQUIRED",
        "CHAT_RESTRICTED",
        "CHAT_FORBIDDEN",
        "CHANNEL_PRIVATE",
        "USER_BANNED_IN_CHANNEL",
        "USER_PRIVACY_RESTRICTED",
        "USER_RESTRICTED",
        "PRIVACY_PREMIUM_REQUIRED",
        "VOICE_MESSAGES_FORBIDDEN",
        "PEER_FLOOD",  # the account is spam-limited: no wait is given, retrying will not help
        "ALLOW_PAYMENT_REQUIRED",
    }
)
_FORBIDDEN_PREFIXES = ("CHAT_SEND_",)  # CHAT_SEND_PLAIN_FORBIDDEN, CHAT_SEND_VOICES_FORBIDDEN…

# Telethon's generated classes do not keep the message they were built from: map them back.
_MESSAGE_OF: dict[type, str] = {}
for _message, _cls in rpcerrorlist.rpc_errors_dict.items():
    _MESSAGE_OF.setdefault(_cls, _message)
_PATTERN_OF: dict[type, str] = {_cls: _pattern for _pattern, _cls in rpcerrorlist.rpc_errors_re}
_CAPTURE = re.compile(r"\(\\d\+\)")


def rpc_message(exc: errors.RPCError) -> str:
    """Telegram's error message for a Telethon RPC error ("USER_IS_BLOCKED", "FLOOD_WAIT_30")."""
    own = exc.__dict__.get("message")  # set only for errors Telethon has no class for
    if isinstance(own, str) and own:
        return own.upper()
    cls = type(exc)
    if cls in _MESSAGE_OF:
        return _MESSAGE_OF[cls]
    if cls in _PATTERN_OF:
        value = getattr(exc, "seconds", None)
        return _CAPTURE.sub(str(value) if value is not None else "X", _PATTERN_OF[cls])
    return (cls.message or cls.__name__).upper()


def _login_error(exc: Exception) -> TwinError | None:
    if isinstance(exc, errors.PhoneNumberInvalidError | errors.PhoneNumberBannedError):
        return InvalidInput("phone", "the phone number is invalid or banned")
    if isinstance(exc, errors.PhoneNumberUnoccupiedError):
        return InvalidInput("phone", "no Telegram account uses this phone number")
    if isinstance(exc, errors.PhoneCodeInvalidError | errors.PhoneCodeEmptyError):
        return InvalidInput("code", "the login code is wrong")
    if isinstance(exc, errors.PhoneCodeExpiredError):
        return Conflict("the login code has expired; request a new one")
    if isinstance(exc, errors.PasswordHashInvalidError):
        return InvalidInput("password", "the two-step verification password is wrong")
    return None


def _refusal(message: str, code: int | None) -> TwinError:
    if code == 420 or message.startswith(("FLOOD_", "SLOWMODE_WAIT_")):
        match = re.search(r"_(\d+)$", message)
        retry_after = float(match.group(1)) if match else None
        return RateLimited("Telegram asks to wait before retrying", retry_after=retry_after)
    if code == 401:
        return Unauthorized("the Telegram account is not logged in")
    if code is not None and abs(code) >= 500:
        return TelegramUnavailable(f"Telegram is having trouble ({message})")
    if message in GONE:
        return ChatGone("it no longer exists", rpc_error=message, code=code)
    if message in TEXT_INVALID:
        return InvalidInput("text", f"Telegram does not accept this text ({message})")
    if message in CHAT_INVALID:
        return ChatInvalid("the chat is not valid for this account", rpc_error=message, code=code)
    if code == 403 or message in FORBIDDEN or message.startswith(_FORBIDDEN_PREFIXES):
        return TelegramForbidden("the account may not do this", rpc_error=message, code=code)
    return TelegramRefused("Telegram refused the request", rpc_error=message, code=code)


def translate_rpc_error(exc: Exception, *, account: str | None = None) -> Exception:
    """Telethon's errors → domain errors (the table in the module docstring). Refusals are logged
    here with Telegram's message and the request that caused them; other exceptions pass through."""
    login = _login_error(exc)
    if login is not None:
        return login
    if isinstance(exc, errors.FloodError | errors.FloodWaitError | errors.SlowModeWaitError):
        seconds = getattr(exc, "seconds", None)
        return RateLimited(
            "Telegram asks to wait before retrying",
            retry_after=float(seconds) if seconds is not None else None,
        )
    if isinstance(exc, errors.RPCError):
        message = rpc_message(exc)
        code = exc.code if isinstance(exc.code, int) else None
        translated = _refusal(message, code)
        request = type(exc.request).__name__ if exc.request is not None else "a request"
        quiet = isinstance(translated, RateLimited | Unauthorized)
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "account %s: Telegram refused %s: %s (code %s)",
            account or "?",
            request,
            message,
            code,
        )
        return translated
    if isinstance(exc, ConnectionError | OSError | asyncio.TimeoutError):
        return TelegramUnavailable("Telegram is not reachable right now")
    return exc


@contextmanager
def rpc_errors(
    account: str | None = None, *, passthrough: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Raise what the block raises as a domain error (`translate_rpc_error`); an exception of a
    `passthrough` type, and any exception the table does not know, propagates unchanged.

    `passthrough` keeps what the caller handles itself: a `RandomIdDuplicateError` ("already
    sent", not an outage) or a `TwinError` the block raised on purpose."""
    try:
        yield
    except passthrough:
        raise
    except Exception as exc:
        translated = translate_rpc_error(exc, account=account)
        if translated is exc:
            raise
        raise translated from exc
