"""The pure parts of outbound webhooks (twin/domain/webhooks.py): contacts found in a message,
what a turn reports, signatures, retry delays and share links."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.webhooks import (
    Turn,
    contact_in,
    open_share,
    retry_delay,
    share_token,
    sign,
    turn_fields,
    verify,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call me: +7 (912) 345-67-89", {"phone": "+79123456789"}),
        ("my number 8 912 345 67 89, thanks", {"phone": "89123456789"}),
        ("write to anna.k+shop@mail.example.ru", {"email": "anna.k+shop@mail.example.ru"}),
        ("a@b.co or +1 555 010 0100", {"email": "a@b.co", "phone": "+15550100100"}),
        ("order 12345 costs 1 500 rub", None),  # short numbers are not phones
        ("see you at 10:30 on 2026-12-05", None),
        ("no contacts here", None),
    ],
)
def test_contacts_are_found_in_the_users_message(text: str, found: dict | None) -> None:
    assert contact_in(text) == found


@pytest.mark.parametrize(
    ("intent", "escalated", "ended", "expected"),
    [
        (
            "request",
            False,
            False,
            {
                "interest": True,
                "operator": False,
                "close": False,
                "success": False,
                "is_bot": False,
            },
        ),
        ("request", False, True, {"interest": True, "close": True, "success": True}),
        ("smalltalk", False, True, {"interest": False, "close": True, "success": False}),
        ("request", True, True, {"operator": True, "close": False, "success": False}),
        ("spam", False, False, {"is_bot": True, "interest": False}),
        (None, False, False, {"interest": False, "is_bot": False}),
    ],
)
def test_what_a_turn_reports(intent, escalated, ended, expected) -> None:
    fields = turn_fields(Turn("hi", intent, escalated, ended))
    assert fields == {**fields, **expected}
    assert fields["get_contact"] is None


def test_a_signature_verifies_only_its_body_secret_and_time() -> None:
    body = b'{"wh_type":"message"}'
    header = sign("s3cret", body, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify("s3cret", header, body, 1_800_000_100)
    assert not verify("s3cret", header, body + b" ", 1_800_000_100)  # another body
    assert not verify("other", header, body, 1_800_000_100)  # another secret
    assert not verify("s3cret", header, body, 1_800_000_301)  # too old: a replay
    assert not verify("s3cret", "v1=abc", body, 1_800_000_000)  # no timestamp


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_retry_delays_double_with_jitter_up_to_the_cap(attempts: int, seed: int) -> None:
    delay = retry_delay(attempts, random.Random(seed), base=1.0, cap=600.0)
    ceiling = min(600.0, 2.0**attempts)
    assert ceiling / 2 <= delay <= ceiling


def test_a_share_token_opens_its_conversation_until_it_expires() -> None:
    token = share_token("s3cret", 7, 42, NOW + timedelta(hours=1))
    assert open_share("s3cret", token, NOW) == (7, 42)
    assert open_share("s3cret", token, NOW + timedelta(hours=2)) is None  # expired
    assert open_share("other", token, NOW) is None  # another secret
    head, _, tail = token.partition(".")
    forged = share_token("s3cret", 7, 43, NOW + timedelta(hours=1)).split(".")[0]
    assert open_share("s3cret", f"{forged}.{tail}", NOW) is None  # another chat, old signature
    assert open_share("s3cret", "not-a-token", NOW) is None
    assert open_share("s3cret", head, NOW) is None
