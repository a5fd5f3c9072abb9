"""Logging set-up: human-readable or JSON lines, with secrets redacted from every record.

Redaction happens on the *formatted* text (message, arguments and traceback together), so no
code path — our own, Telethon's, aiohttp's — can leak a secret by formatting it differently.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

MASK = "***"
_MIN_SECRET_LENGTH = 4

# Values that look secret whatever their source: key=value pairs of sensitive names, bearer
# tokens, Telethon StringSession blobs and other long base64 runs.
_PATTERNS = [
    re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]+)"),
    re.compile(
        r"(?i)(\b(?:password|passwd|api_hash|api_key|token|secret|secret_key"
        r"|authorization|auth_key|session)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}]+)"
    ),
    # Login codes are 5 digits; three-digit HTTP status "codes" stay readable.
    re.compile(r"(?i)(\b(?:phone_)?code\b[\"']?\s*[:=]\s*[\"']?)(\d{4,8})\b"),
    re.compile(r"()([A-Za-z0-9+/_-]{64,}={0,2})"),
]

# Provider SDKs and their HTTP clients: at DEBUG the openai SDK logs every request's options,
# whole prompts included. They stay at INFO or above unless `[logging] sdk_debug = true`.
# (Telethon is quieted separately below.)
SDK_LOGGERS = ("openai", "httpx", "httpcore", "google_genai", "google", "elevenlabs")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "twin_request_id", default=None
)


class Redactor:
    """Masks registered secret values and secret-looking patterns. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Register values to mask from now on (configured keys, phone codes, passwords…)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= _MIN_SECRET_LENGTH:
                    self._secrets.add(secret)
                    # The JSON-escaped form matters for the JSON log format.
                    self._secrets.add(json.dumps(secret)[1:-1])
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        for regex in _PATTERNS:
            text = regex.sub(lambda m: m.group(1) + MASK, text)
        return text


redactor = Redactor()


class _Formatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(self.render(record))

    def render(self, record: logging.LogRecord) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class TextFormatter(_Formatter):
    def render(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        request_id = getattr(record, "request_id", None)
        prefix = f"{stamp} {record.levelname:<7} {record.name}"
        if request_id:
            prefix += f" [{request_id}]"
        text = f"{prefix}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(_Formatter):
    """One JSON object per line: what journald and log shippers parse without configuration."""

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
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
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
    logger; provider SDKs log at DEBUG only with `sdk_debug`."""
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
    # Telethon is chatty at INFO (every reconnect); keep it one level quieter than ours.
    logging.getLogger("telethon").setLevel(max(logging.getLevelName(level), logging.WARNING))
    for name in SDK_LOGGERS:
        sdk_level = logging.NOTSET if sdk_debug else max(logging.getLevelName(level), logging.INFO)
        logging.getLogger(name).setLevel(sdk_level)
    # A warning (DeprecationWarning, "coroutine was never awaited"…) becomes a record of the
    # "py.warnings" logger instead of a raw stderr line that would break JSON log output.
    logging.captureWarnings(True)
    return handler
