"""One exception tree for the daemon.

Adapters translate vendor errors (Telethon's FloodWaitError, HTTP 429 …) into these, keeping
`retry_after`, so services and the API never see SDK types.
"""

from __future__ import annotations

from collections.abc import Sequence

ERROR_CHARS = 200  # an error as logs, events and /ready show it


def clip(text: str, limit: int = ERROR_CHARS) -> str:
    """`text` cut to `limit` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(exc: BaseException, limit: int = ERROR_CHARS) -> str:
    """An error as one bounded line: its kind and its own message."""
    text = " ".join(str(exc).split())
    return clip(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, limit)


class TwinError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(TwinError):
    """Invalid configuration: one human-readable line per problem in `problems`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class NotFound(TwinError):
    """A record the caller asked for does not exist."""


class Conflict(TwinError):
    """The request conflicts with the current state (no pending login, duplicate, …);
    `problems` name what conflicts, field by field, when there is more to say."""

    def __init__(self, message: str = "", problems: Sequence[tuple[str, str]] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message)


class ServedElsewhere(Conflict):
    """The Telegram account (or bot) is not served by this process: another twin process on
    the same PostgreSQL serves it, or this one serves as many as it may. The API forwards the
    request to the process serving it (twin.api.forwarding), or answers 409. `owner`: that
    process's id and API address, when the refusal looked it up already."""

    def __init__(
        self, account: str, message: str, owner: tuple[str, str | None] | None = None
    ) -> None:
        self.account = account
        self.owner = owner
        super().__init__(message)


class PolicyError(TwinError):
    """A behaviour rule forbids the action."""


class AdapterError(TwinError):
    """An I/O dependency (Telegram, a provider, the database) failed.

    `transient` tells an outage (timeouts, connection errors, 5xx, 429: the same request may
    succeed later) from a refusal that no retry can change (an invalid request, content
    refused, a peer that does not exist). The reply pipeline retries only transient failures.
    """

    transient: bool = True


class RateLimited(AdapterError):
    """The peer asked us to slow down; `retry_after` is in seconds when known."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class StorageUnavailable(AdapterError):
    """The database cannot be reached (server down, connection lost, file locked too long):
    the same unit of work may succeed once it is back."""


class TelegramUnavailable(AdapterError):
    """Telegram could not be reached or the account is not connected."""


class TelegramRefused(AdapterError):
    """Telegram answered, and refused: no retry of the same request changes that.

    `rpc_error` is Telegram's own error message ("USER_IS_BLOCKED", "INPUT_METHOD_INVALID"…),
    kept for logs, the API's error details and a failed reply's reason. This base class is a
    refusal the daemon has no better name for (the API answers 502 `upstream_error`).
    """

    transient = False

    def __init__(self, message: str, *, rpc_error: str, code: int | None = None) -> None:
        self.rpc_error = rpc_error
        self.code = code
        super().__init__(f"{rpc_error}: {message}")


class TelegramForbidden(TelegramRefused):
    """The account may not do this: blocked by the user, no right to write in the chat, privacy."""


class ChatInvalid(TelegramRefused):
    """The chat (peer) named in the request is not valid for this account."""


class ChatGone(TelegramRefused):
    """What the request names existed but no longer does (a deleted account, a message id)."""


class Unauthorized(TwinError):
    """The Telegram account is not logged in (yet)."""


class InvalidInput(TwinError):
    """A value the caller sent is wrong in a way only the peer could tell (e.g. a login code)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class TooLarge(TwinError):
    """What the caller sent is over a size limit (an upload): 413."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class InvalidSettings(TwinError):
    """Behaviour settings that do not validate: (dotted field, problem) pairs."""

    def __init__(
        self, problems: Sequence[tuple[str, str]], message: str = "The settings are not valid."
    ) -> None:
        self.problems = list(problems)
        super().__init__(message)


class StartupError(TwinError):
    """The process cannot start where it is: a file it needs cannot be written or read, or its
    port is taken. The CLI prints the one line and exits 2, which the systemd unit's
    RestartPreventExitStatus=2 turns into a stop instead of a restart loop."""
