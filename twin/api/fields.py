"""Constrained input types shared by the API's models: what /openapi.json documents is exactly
what the validator accepts, so every constraint lives in the type (bounds, patterns, lengths),
never in a view's code.

Ids are bounded to the signed 64-bit range that Telegram, SQLite and PostgreSQL share: a larger
number is a 422 at the boundary, not an overflow deep inside a driver.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BeforeValidator, Field

from twin.domain.phones import PHONE_DIGITS, PHONE_MAX_LENGTH, PHONE_PATTERN

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# A phone in international form (twin.domain.phones, the rule `twin login` applies too): 7 to 15
# digits (E.164), an optional leading "+", and spaces, dashes or parentheses only between digits.
# A Telegram username: a letter, then letters, digits or underscores; 4 to 32 characters.
USERNAME = r"[A-Za-z][A-Za-z0-9_]{3,31}"
# A chat id given as a string: at most 18 digits, so it is always inside the 64-bit range.
CHAT_ID_TEXT = r"-?[0-9]{1,18}"
CHAT_REFERENCE_PATTERN = rf"^(?:{CHAT_ID_TEXT}|@{USERNAME}|\+{PHONE_DIGITS})$"

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
PeerId = Annotated[
    int,
    Field(
        ge=INT64_MIN,
        le=INT64_MAX,
        description="Telegram peer id (users positive, groups and channels negative)",
    ),
]
RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]
Phone = Annotated[
    str,
    Field(
        max_length=PHONE_MAX_LENGTH,
        pattern=PHONE_PATTERN,
        description="international form, 7 to 15 digits",
        examples=["+15551234567"],
    ),
]
ChatReference = Annotated[
    str,
    Field(
        max_length=40,
        pattern=CHAT_REFERENCE_PATTERN,
        description='a chat id as text, "@username" or "+phone"',
        examples=["@username"],
    ),
]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _iso_date(value: object) -> object:
    # pydantic would also read "0" as a date (a Unix time, even in strict mode); the schema
    # says `format: date`, i.e. YYYY-MM-DD, so nothing else is one.
    if not isinstance(value, str):
        return value  # a date already, or refused as not one
    if not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real calendar date (YYYY-MM-DD)") from None


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
