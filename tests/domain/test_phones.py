"""The one phone rule (twin/domain/phones.py) that the API's models and `twin login` share."""

from __future__ import annotations

from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError

from twin.domain.phones import PHONE_MAX_LENGTH, PHONE_PATTERN, parse_phone

# How a request model declares the rule (the pattern is also what /openapi.json documents).
API_PHONE = TypeAdapter(Annotated[str, Field(max_length=PHONE_MAX_LENGTH, pattern=PHONE_PATTERN)])


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("+15551234567", "15551234567"),
        ("15550100", "15550100"),
        ("+1 (555) 010-0100", "15550100100"),
        ("+7 999 123-45-67", "79991234567"),
        ("1234567", "1234567"),
        ("+123456789012345", "123456789012345"),
    ],
)
def test_phones_in_international_form(text: str, digits: str) -> None:
    assert parse_phone(text) == digits


@pytest.mark.parametrize(
    "text",
    [
        "",
        "+",
        "123456",  # 6 digits
        "+1234567890123456",  # 16 digits
        "12ab345678",
        "++15551234567",
        "+ 15551234567",  # separators only between digits
        "15551234567-",
        "(555) 0100100",
        "1555123456\n",
        "1" + " " * 40 + "234567",  # over 32 characters
        "１５５５１２３４５６７",  # full-width digits are not ASCII digits
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="international form"):
        parse_phone(text)


@given(st.text(alphabet="+0123456789 ()-x\n٣", max_size=40))
def test_the_api_field_and_parse_phone_accept_exactly_the_same_text(text: str) -> None:
    try:
        parse_phone(text)
        accepted = True
    except ValueError:
        accepted = False
    try:
        API_PHONE.validate_python(text)
        api_accepted = True
    except ValidationError:
        api_accepted = False
    assert accepted == api_accepted
