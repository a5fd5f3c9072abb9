"""Logging set-up: human-readable or JSON lines, with secrets redacted from every record.

Redaction happens on the *formatted* text (message, arguments, structured fields and traceback
together), so no code path — our own, Telethon's, aiohttp's — can leak a secret by formatting it
differently. It masks values, not words: a configured secret, a login code or password given to
`redactor.add`, the value after a secret-looking key (`api_key=…`, `"token": "…"`), a bearer
token and long base64 runs (session strings) — but "llm.api_key: required for provider …"
stays readable, and a short secret (a login code) is masked only where it stands alone, never
inside a longer number or word.

Structured fields: `log.info("…", extra={"account": …, "chat": …})` puts them on the record; the
JSON format writes every such field as a key of the line's object (the text format only shows
the message, which says the same for a reader).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

MASK = "***"
_MIN_SECRET_LENGTH = 4
# A registered secret shorter than this (e.g. a five-digit login code) is masked only as a
# whole token: inside a longer number or word it is a coincidence, and masking it there garbles
# the line ("chat 1735190000" must not become "chat 1***0000").
_WHOLE_TOKEN_BELOW = 8

_KEYS = r"password|passwd|api_hash|api_key|token|secret|secret_key|authorization|auth_key|session"
# key, separator and an opening quote, then the value
_KEY_VALUE = re.compile(
    rf"(?i)(?P<head>\b(?:{_KEYS})\b[\"']?\s*(?P<sep>[:=])\s*(?P<quote>[\"']?))"
    r"(?P<value>[^\s\"',;}]+)"
)
# A plain word after "key:" is prose ("api_key: required for …", "token: expired"), not a value.
_WORD = re.compile(r"[A-Za-z]?[a-z]{1,24}[.!?)]*")
# Values that look secret whatever their source: bearer tokens; login codes (5 digits; three-digit
# HTTP status "codes" stay readable); Telethon StringSession blobs and other long base64 runs.
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+")
_CODE = re.compile(r"(?i)(\b(?:phone_)?code\b[\"']?\s*[:=]\s*[\"']?)\d{4,8}\b")
# (starting only where a run starts: no rescanning of a run from each of its characters)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{64,}={0,2}")
# Substrings (of the lower-cased text) without which a pattern cannot match: most lines have
# none, and a substring test costs far less than a regular expression's scan.
_KEY_HINTS = ("pass", "api_", "token", "secret", "authorization", "auth_key", "session")
_UPPER, _LOWER, _DIGIT = re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]")

# Libraries whose INFO is chatter, not the twin working: the HTTP clients of the provider SDKs
# (one line per request), Alembic (its plugin set-up and "Context impl …" at every start),
# aiosqlite (every statement at DEBUG). They log WARNING and above, unless
# `[logging] sdk_debug = true` lets them log at DEBUG (the openai SDK then logs whole prompts).
# (Telethon is quieted separately below and in twin.adapters.telegram.)
LIBRARY_LOGGERS = (
    "openai",
    "httpx",
    "httpcore",
    "google_genai",
    "google",
    "elevenlabs",
    "alembic",
    "aiosqlite",
)


class Redactor:
    """Masks registered secret values and secret-looking patterns. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        # (the registered values, longest first; one pattern matching any of them), swapped whole
        self._registered: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Register values to mask from now on (configured keys, phone codes, passwords…)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= _MIN_SECRET_LENGTH:
                    self._secrets.add(secret)
                    # The JSON-escaped form matters for the JSON log format.
                    self._secrets.add(json.dumps(secret)[1:-1])
            ordered = tuple(sorted(self._secrets, key=len, reverse=True))
            pattern = re.compile("|".join(map(_secret_pattern, ordered))) if ordered else None
            self._registered = (ordered, pattern)

    def __call__(self, text: str) -> str:
        known, pattern = self._registered
        if pattern is not None and any(secret in text for secret in known):
            text = pattern.sub(MASK, text)
        lower = text.lower()  # masking values never removes the words the hints look for
        if "bearer" in lower:
            text = _BEARER.sub(_keep_head, text)
        if any(hint in lower for hint in _KEY_HINTS):
            text = _KEY_VALUE.sub(_mask_value, text)
        if "code" in lower:
            text = _CODE.sub(_keep_head, text)
        if len(text) >= 64:
            text = _BASE64.sub(_mask_base64, text)
        return text


def _secret_pattern(secret: str) -> str:
    escaped = re.escape(secret)
    if len(secret) >= _WHOLE_TOKEN_BELOW:
        return escaped
    return rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"


def _keep_head(match: re.Match[str]) -> str:
    return match.group(1) + MASK


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value == MASK:
        return match.group(0)
    prose = match.group("sep") == ":" and not match.group("quote")
    if prose and _WORD.fullmatch(value):
        return match.group(0)  # "api_key: required for …": a word, not a value
    return match.group("head") + MASK


def _mask_base64(match: re.Match[str]) -> str:
    run = match.group(0)
    # Base64 of random bytes mixes cases and digits; a long path or identifier rarely does all.
    if _UPPER.search(run) and _LOWER.search(run) and _DIGIT.search(run):
        return MASK
    return run


redactor = Redactor()


# --- the request a record belongs to -------------------------------------------------------------


class _RequestScope:
    """The id of one HTTP request, shared with the tasks it starts until it ends."""

    __slots__ = ("id",)

    def __init__(self, request_id: str) -> None:
        self.id: str | None = request_id


_request_scope: contextvars.ContextVar[_RequestScope | None] = contextvars.ContextVar(
    "twin_request_scope", default=None
)


@contextlib.contextmanager
def request_scope(request_id: str) -> Iterator[None]:
    """Stamp every record logged while a request is handled with its id — including records of
    tasks it starts (they copy the context), but only until the request ends: a Telegram
    connection opened by a login request lives on, and what it logs later (a message received,
    a reply sent) is no part of that request."""
    scope = _RequestScope(request_id)
    token = _request_scope.set(scope)
    try:
        yield
    finally:
        scope.id = None
        _request_scope.reset(token)


def current_request_id() -> str | None:
    """The X-Request-ID of the request being handled, or None outside a request."""
    scope = _request_scope.get()
    return None if scope is None else scope.id


# --- what a masked chat looks like ---------------------------------------------------------------


def mask_chat(peer_id: int | None) -> str | None:
    """A Telegram chat (peer) id fit for a log line: its last four digits, the rest masked, and
    a channel's or supergroup's `-100` prefix kept (it says what kind of chat it is):
    1000002 → `***0002`, -1001234567890 → `-100******7890`. Enough to tell chats apart and
    find one in GET /chats, not enough to look a person up."""
    if peer_id is None:
        return None
    digits = str(abs(peer_id))
    sign = "-" if peer_id < 0 else ""
    if sign and len(digits) > 10 and digits.startswith("100"):
        sign, digits = "-100", digits[3:]
    if len(digits) <= 4:
        return sign + "*" * len(digits)
    return f"{sign}{'*' * (len(digits) - 4)}{digits[-4:]}"


# --- formatters ----------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record is a structured field (`extra=`).
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "request_id", "taskName"}
)


class _Formatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(self.render(record))

    def render(self, record: logging.LogRecord) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class TextFormatter(_Formatter):
    _second, _stamp = -1, ""  # the last second formatted (a busy second has many lines)

    def render(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # formatting runs under the handler's lock
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
            self._second, self._stamp = second, stamp
        stamp = self._stamp
        request_id = getattr(record, "request_id", None)
        prefix = f"{stamp} {record.levelname:<7} {record.name}"
        if request_id:
            prefix += f" [{request_id}]"
        text = f"{prefix}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(_Formatter):
    """One JSON object per line: what journald and log shippers parse without configuration.
    Structured fields of the record (`extra=`) are keys of it."""

    def render(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and value is not None and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        return True


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    *,
    sdk_debug: bool = False,
) -> logging.Handler:
    """Route every logger, and Python warnings, through one redacting handler on the root
    logger; the libraries of LIBRARY_LOGGERS log WARNING and above, or DEBUG with
    `sdk_debug`."""
    redactor.add(*secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_twin", False):
            root.removeHandler(old)
    handler._twin = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet = max(logging.getLevelName(level), logging.WARNING)
    # Telethon is chatty at INFO (every reconnect); keep it one level quieter than ours.
    logging.getLogger("telethon").setLevel(quiet)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if sdk_debug else quiet)
    # A warning (DeprecationWarning, "coroutine was never awaited"…) becomes a record of the
    # "py.warnings" logger instead of a raw stderr line that would break JSON log output.
    logging.captureWarnings(True)
    return handler
