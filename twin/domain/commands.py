"""Owner commands: messages the owner types in any chat from their phone, starting with a prefix
(`[twin] command_prefix`, ".twin" by default; empty = no commands), e.g. `.twin off`,
`.twin pause 2h`. Pure: the parser, the acknowledgement's wording and its random id.

    on | off | draft      the account's mode (twin.domain.safety.AccountMode)
    pause [duration]      pause the twin in the chat typed in (2h, 30m, 1d, 1h30m, 90 = minutes;
                          at most MAX_PAUSE_MINUTES); without a duration: until resumed
    resume                end the pause of the chat typed in
    status                the account's mode (and the chat's pause)
    help                  the usage

Case-insensitive and tolerant of extra spaces. Anything else after the prefix (an unknown verb,
a bad duration, words after `on`) is an `invalid` command: it is still deleted, and its
acknowledgement explains the usage. The prefix must be followed by a space or end the message
(".twinkle" is no command).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from twin.domain.models import require_aware

MAX_PAUSE_MINUTES = 30 * 24 * 60  # 30 days: longer is "until resumed" (`pause` alone)

_UNITS = {
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
    "h": 60,
    "hr": 60,
    "hrs": 60,
    "hour": 60,
    "hours": 60,
    "d": 1440,
    "day": 1440,
    "days": 1440,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)([a-z]*)")


class Verb(StrEnum):
    ON = "on"
    OFF = "off"
    DRAFT = "draft"
    PAUSE = "pause"
    RESUME = "resume"
    STATUS = "status"
    HELP = "help"
    INVALID = "invalid"  # not understood: the acknowledgement explains the usage


_PLAIN = {Verb.ON, Verb.OFF, Verb.DRAFT, Verb.RESUME, Verb.STATUS, Verb.HELP}


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    typed: str  # the command as typed, spaces collapsed (for the acknowledgement and the event)
    minutes: float | None = None  # pause: how long (None: until resumed)
    problem: str = ""  # invalid: what was not understood


@dataclass(frozen=True, slots=True)
class OwnerText:
    """A text message the owner sent from another device (any chat, Saved Messages too): a
    command if it starts with the prefix, else ordinary owner activity."""

    account: str
    chat_id: int
    message_id: int
    date: datetime
    text: str
    saved: bool = False  # typed in the owner's own Saved Messages
    reply_to: int | None = None  # the message it answers (a draft's note in Saved Messages)

    def __post_init__(self) -> None:
        require_aware(self.date, "OwnerText.date")
        object.__setattr__(self, "date", self.date.astimezone(UTC))


def parse(text: str, prefix: str) -> Command | None:
    """The command in `text`, or None when it is not one (no prefix configured, or the text
    does not start with it)."""
    prefix = prefix.strip().lower()
    words = text.split()
    if not prefix or not words or words[0].lower() != prefix:
        return None
    typed = " ".join(words)
    if len(words) == 1:
        return Command(Verb.HELP, typed)
    name, args = words[1].lower(), words[2:]
    try:
        verb = Verb(name)
    except ValueError:
        return Command(Verb.INVALID, typed, problem=f"unknown command '{words[1]}'")
    if verb is Verb.INVALID:
        return Command(Verb.INVALID, typed, problem=f"unknown command '{words[1]}'")
    if verb in _PLAIN:
        if args:
            return Command(Verb.INVALID, typed, problem=f"'{name}' takes nothing after it")
        return Command(verb, typed)
    if not args:
        return Command(Verb.PAUSE, typed)  # until resumed
    minutes = parse_duration("".join(args))
    if isinstance(minutes, str):
        return Command(Verb.INVALID, typed, problem=minutes)
    return Command(Verb.PAUSE, typed, minutes=minutes)


def parse_duration(text: str) -> float | str:
    """Minutes of "2h", "30m", "1d", "1h30m", "1.5h" or "90" (a bare number is minutes); a
    str says what is wrong."""
    text = text.lower()
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return f"'{text}' is not a duration (e.g. 30m, 2h, 1d)"
    if len(parts) > 1 and any(not unit for _, unit in parts):
        return f"'{text}' is not a duration: give each number a unit (e.g. 1h30m)"
    minutes = 0.0
    for number, unit in parts:
        factor = _UNITS.get(unit or "m")
        if factor is None:
            return f"'{unit}' is not a unit: use m, h or d"
        minutes += float(number) * factor
    if minutes <= 0:
        return "a pause must last longer than 0 minutes"
    if minutes > MAX_PAUSE_MINUTES:
        return (
            f"a pause lasts at most {MAX_PAUSE_MINUTES // 1440} days (`pause` alone: until resumed)"
        )
    return minutes


def ack_random_id(account: str, chat_id: int, message_id: int) -> int:
    """The random id of a command's acknowledgement, derived from the command's message: a
    command delivered again (catch-up after a crash) is acknowledged with the same id, which
    Telegram refuses as a duplicate — never two acknowledgements of one command."""
    digest = hashlib.blake2b(
        f"twin-owner-command:{account}:{chat_id}:{message_id}".encode(), digest_size=8
    ).digest()
    value = int.from_bytes(digest, "big", signed=True)
    return value or 1


def usage(prefix: str) -> str:
    p = prefix.strip()
    return (
        f"Commands: `{p} on` (answer), `{p} off` (no replies), `{p} draft` (write replies for "
        f"you, send nothing) — for the whole account; `{p} pause 2h` (30m, 1d, 90 = minutes; "
        f"`{p} pause` alone: until resumed) and `{p} resume` — in the chat you type them in; "
        f"`{p} status`. Commands are deleted once read."
    )


def duration_text(minutes: float) -> str:
    """90 → "1 h 30 min", 2880 → "2 d"."""
    total = round(minutes)
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(p for p in parts if p) or f"{minutes:g} min"
