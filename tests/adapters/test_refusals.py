"""Telegram's refusals → domain errors: the one table, fed the way Telethon builds its errors
(`rpc_message_to_error` on an `rpc_error`). End to end (sandbox → API / pipeline):
tests/faults/test_refusals.py."""

from __future__ import annotations

import logging

import pytest
from telethon import errors, functions, types

from twin import errors as domain
from twin.adapters.telegram.refusals import rpc_message, translate_rpc_error

REQUEST = functions.messages.SendMessageRequest(
    peer=types.InputPeerSelf(), message="x", random_id=1
)


def telethon_error(code: int, message: str) -> errors.RPCError:
    return errors.rpc_message_to_error(types.RpcError(code, message), REQUEST)


@pytest.mark.parametrize(
    ("code", "message", "expected", "transient"),
    [
        (400, "USER_IS_BLOCKED", domain.TelegramForbidden, False),
        (400, "YOU_BLOCKED_USER", domain.TelegramForbidden, False),
        (403, "CHAT_WRITE_FORBIDDEN", domain.TelegramForbidden, False),
        (403, "USER_PRIVACY_RESTRICTED", domain.TelegramForbidden, False),
        (403, "CHAT_SEND_VOICES_FORBIDDEN", domain.TelegramForbidden, False),
        (403, "SOME_FUTURE_PRIVACY_RULE", domain.TelegramForbidden, False),  # any 403
        (400, "PEER_ID_INVALID", domain.ChatInvalid, False),
        (400, "CHAT_ID_INVALID", domain.ChatInvalid, False),
        (400, "USERNAME_NOT_OCCUPIED", domain.ChatInvalid, False),
        (400, "INPUT_USER_DEACTIVATED", domain.ChatGone, False),
        (400, "MSG_ID_INVALID", domain.ChatGone, False),
        (400, "INPUT_METHOD_INVALID", domain.TelegramRefused, False),
        (400, "SOMETHING_TELETHON_NEVER_HEARD_OF", domain.TelegramRefused, False),
        (406, "UPDATE_APP_TO_LOGIN", domain.TelegramRefused, False),
        (500, "INTERNAL", domain.TelegramUnavailable, True),
        (-503, "Timeout", domain.TelegramUnavailable, True),
        (401, "AUTH_KEY_UNREGISTERED", domain.Unauthorized, None),
    ],
)
def test_each_refusal_has_its_class_and_keeps_telegrams_message(
    code: int, message: str, expected: type, transient: bool | None
) -> None:
    translated = translate_rpc_error(telethon_error(code, message), account="main")
    assert type(translated) is expected
    if transient is not None:
        assert translated.transient is transient
    if isinstance(translated, domain.TelegramRefused):
        assert translated.rpc_error == message
        assert str(translated).startswith(message)  # what a failed reply's reason shows


@pytest.mark.parametrize(
    ("message", "retry_after"),
    [("FLOOD_WAIT_42", 42.0), ("SLOWMODE_WAIT_10", 10.0), ("FLOOD_PREMIUM_WAIT_7", 7.0)],
)
def test_waits_are_rate_limits_with_their_delay(message: str, retry_after: float) -> None:
    translated = translate_rpc_error(telethon_error(420, message))
    assert isinstance(translated, domain.RateLimited)
    assert translated.retry_after == retry_after and translated.transient


def test_telegrams_message_is_recovered_from_telethons_classes() -> None:
    assert rpc_message(telethon_error(400, "USER_IS_BLOCKED")) == "USER_IS_BLOCKED"
    assert rpc_message(telethon_error(420, "FLOOD_WAIT_30")) == "FLOOD_WAIT_30"
    assert rpc_message(telethon_error(400, "brand_new_error")) == "BRAND_NEW_ERROR"


def test_a_refusal_is_logged_with_its_message_and_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="twin.telegram"):
        translate_rpc_error(telethon_error(400, "USER_IS_BLOCKED"), account="main")
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "account main: Telegram refused SendMessageRequest: USER_IS_BLOCKED (code 400)"
    )


def test_login_errors_and_connection_errors_keep_their_meaning() -> None:
    wrong_code = translate_rpc_error(telethon_error(400, "PHONE_CODE_INVALID"))
    assert isinstance(wrong_code, domain.InvalidInput) and wrong_code.field == "code"
    assert isinstance(translate_rpc_error(ConnectionResetError()), domain.TelegramUnavailable)
    other = RuntimeError("a bug")
    assert translate_rpc_error(other) is other
