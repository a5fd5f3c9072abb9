"""The one rule for phone numbers that people type (the API's login endpoints, `twin login`).

A phone in international form: 7 to 15 digits (ITU-T E.164), an optional leading "+", and spaces,
dashes or parentheses only between digits ("+1 (555) 010-0100"), at most 32 characters. The
pattern is written for both Python's `re` and pydantic's (Rust) regex engine, so a request model
can declare it as its field's `pattern` and document exactly what `parse_phone` accepts.
"""

from __future__ import annotations

import re

PHONE_MAX_LENGTH = 32
PHONE_DIGITS = r"[0-9](?:[ ()-]*[0-9]){6,14}"
PHONE_PATTERN = rf"^\+?{PHONE_DIGITS}$"
PHONE_RULE = "a phone number in international form: 7 to 15 digits, e.g. +15551234567"

_PHONE = re.compile(rf"\+?{PHONE_DIGITS}", re.ASCII)


def parse_phone(text: str) -> str:
    """The digits of `text` (what Telegram is sent, after a "+"); ValueError when `text` is not
    a phone as the API accepts it."""
    if len(text) > PHONE_MAX_LENGTH or not _PHONE.fullmatch(text):
        raise ValueError(f"must be {PHONE_RULE}")
    return "".join(ch for ch in text if ch.isdigit())
