"""HTTP tools the brain may call (pure parts): what a tool is, how a call's URL is built, what
part of the answer goes back to the model, and which hosts may be called.

A tool is declared by the owner (`[tools.http.<name>]`): a method, a URL template whose
`{placeholders}` are filled from the call's arguments (percent-encoded), a JSON schema of the
arguments, and an excerpt path into the JSON answer (`order.status`, `items.0.name`; empty:
the whole answer). The model sees the name, description and schema (OpenAI tools, Gemini
function declarations) and gets the excerpt back, cut to EXCERPT_CHARS.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = [
    "EXCERPT_CHARS",
    "ToolCall",
    "ToolSpec",
    "ToolUse",
    "excerpt",
    "host_allowed",
    "placeholders",
    "render_url",
]

EXCERPT_CHARS = 2000
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about a tool."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of an object


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asked for a tool (`id`: the provider's id of the call, when it has one)."""

    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A call made while answering, as stored with the reply."""

    name: str
    arguments: Mapping[str, Any]
    ok: bool
    result: str  # what the model got back (an excerpt, or the error)
    status: int | None = None
    duration_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arguments": dict(self.arguments),
            "ok": self.ok,
            "result": self.result[:500],
            "status": self.status,
            "duration_ms": self.duration_ms,
        }


def placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def render_url(template: str, arguments: Mapping[str, Any]) -> str:
    """The template with each `{name}` replaced by the argument, percent-encoded (a path
    segment cannot be escaped from); KeyError names a missing argument."""
    values = {name: quote(str(arguments[name]), safe="") for name in placeholders(template)}
    return template.format(**values)


def excerpt(data: Any, path: str) -> str:
    """The part of `data` at dotted `path` as text ('' path: all of it), cut to EXCERPT_CHARS;
    a path that leads nowhere says so."""
    node = data
    for part in [p for p in path.split(".") if p]:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Sequence) and not isinstance(node, str) and part.isdigit() and (
            int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return f"(no '{path}' in the answer)"
    text = node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)
    return text[:EXCERPT_CHARS]


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
    """Whether `url` is http(s) to one of the `allowed` hosts (exact, case-insensitive;
    `host:port` entries match the port too)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    with_port = f"{host}:{parts.port}" if parts.port else host
    names = {entry.lower() for entry in allowed}
    return host in names or with_port in names
