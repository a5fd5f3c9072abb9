"""`rpc_errors`: the one context manager the account's requests run in, turning Telethon's errors
into domain errors. Real Telethon error instances, raised in a plain `with` block: no I/O."""

from __future__ import annotations

import asyncio

import pytest
from telethon import errors

from twin import errors as domain
from twin.adapters.telegram.refusals import rpc_errors


def raised_from(
    exc: BaseException, passthrough: tuple[type[BaseException], ...] = ()
) -> BaseException:
    """What leaves `with rpc_errors("main", passthrough=…)` when its block raises `exc`."""
    with pytest.raises(BaseException) as caught, rpc_errors("main", passthrough=passthrough):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    ("exc", "retry_after"),
    [
        (errors.FloodWaitError(request=None, capture=30), 30.0),
        (errors.FloodPremiumWaitError(request=None, capture=7), 7.0),
        (errors.SlowModeWaitError(request=None, capture=10), 10.0),
        (errors.FloodError(request=None, message="FLOOD", code=420), None),
    ],
)
def test_a_flood_wait_is_rate_limited_with_its_delay(
    exc: Exception, retry_after: float | None
) -> None:
    error = raised_from(exc)
    assert isinstance(error, domain.RateLimited)
    assert error.retry_after == retry_after and error.transient
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (errors.AuthKeyUnregisteredError(request=None), domain.Unauthorized),
        (errors.SessionRevokedError(request=None), domain.Unauthorized),
        (errors.UserIsBlockedError(request=None), domain.TelegramForbidden),
        (errors.PeerIdInvalidError(request=None), domain.ChatInvalid),
        (errors.MessageIdInvalidError(request=None), domain.ChatGone),
        (errors.MessageTooLongError(request=None), domain.InvalidInput),
        (errors.RandomIdDuplicateError(request=None), domain.TelegramUnavailable),  # a 500
        (errors.PhoneCodeInvalidError(request=None), domain.InvalidInput),
        (errors.PhoneCodeExpiredError(request=None), domain.Conflict),
        (ConnectionResetError("reset"), domain.TelegramUnavailable),
        (OSError("no route to host"), domain.TelegramUnavailable),
        (TimeoutError(), domain.TelegramUnavailable),
    ],
)
def test_telethon_and_connection_errors_become_domain_errors(
    exc: Exception, expected: type
) -> None:
    error = raised_from(exc)
    assert type(error) is expected
    assert error.__cause__ is exc


def test_a_refusal_keeps_telegrams_message() -> None:
    error = raised_from(errors.UserIsBlockedError(request=None))
    assert isinstance(error, domain.TelegramForbidden)
    assert error.rpc_error == "USER_IS_BLOCKED" and not error.transient


def test_what_the_table_does_not_know_propagates_unchanged() -> None:
    for exc in (RuntimeError("a bug"), ValueError("no such entity"), domain.Conflict("x")):
        assert raised_from(exc) is exc
        assert exc.__cause__ is None


def test_cancellation_is_never_translated() -> None:
    exc = asyncio.CancelledError()
    assert raised_from(exc) is exc


def test_passthrough_keeps_what_the_caller_handles_itself() -> None:
    duplicate = errors.RandomIdDuplicateError(request=None)
    assert raised_from(duplicate, passthrough=(errors.RandomIdDuplicateError,)) is duplicate
    flood = errors.FloodWaitError(request=None, capture=5)
    error = raised_from(flood, passthrough=(errors.RandomIdDuplicateError,))
    assert isinstance(error, domain.RateLimited) and error.retry_after == 5.0
    refusal = domain.InvalidInput("message", "message 3 has no media")
    assert raised_from(refusal, passthrough=(domain.TwinError,)) is refusal


def test_a_block_that_succeeds_is_left_alone() -> None:
    with rpc_errors("main"):
        value = 1
    assert value == 1
