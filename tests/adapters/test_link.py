"""The link state's bookkeeping and its Telethon log filter, driven by hand (no I/O).

The same behaviour against the real transport is in tests/faults/test_outage.py.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import pytest

from twin.adapters.telegram.link import (
    UNDECODABLE_LOG_INTERVAL,
    LinkState,
    TelethonNoise,
    describe,
    install_log_filters,
)
from twin.domain.backoff import Backoff

POLICY = Backoff(base=1.0, cap=60.0)


class Clocks:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def make_link(clocks: Clocks, seed: int = 1) -> LinkState:
    return LinkState(
        "main",
        POLICY,
        layer=229,
        rng=random.Random(seed),
        clock=lambda: clocks.now,
        monotonic=lambda: clocks.mono,
    )


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_an_outage_logs_one_warning_and_one_info_with_its_duration(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    link = make_link(clocks)
    caplog.set_level(logging.INFO, logger="twin.telegram")
    assert link.before_connect() == 0  # the first attempt never waits
    link.received()
    assert link.connected and link.reconnects == 0
    assert messages(caplog, logging.INFO) == [
        "account main: connected to Telegram (client API layer 229)"
    ]
    caplog.clear()

    link.lost("connection closed by the server")
    assert not link.connected and link.status().outage_since == clocks.now
    waits = []
    for _ in range(6):  # the server refuses six times
        waits.append(link.before_connect())
        clocks.advance(waits[-1])
        link.connect_failed(ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 443)"))
    waits.append(link.before_connect())
    clocks.advance(waits[-1])
    link.received()

    assert waits[0] == 0  # straight away after the loss, then the policy's draws
    assert waits[1:] == POLICY.delays(6, random.Random(1)) == link.delays
    assert link.connected and link.reconnects == 1 and link.status().outage_since is None
    [warning] = messages(caplog, logging.WARNING)
    assert "connection to Telegram lost (connection closed by the server)" in warning
    [info] = messages(caplog, logging.INFO)
    assert info == (
        f"account main: connection to Telegram restored after {sum(waits):.1f} s (7 attempt(s))"
    )
    status = link.status()
    assert status.last_error == "ConnectionRefusedError (Connection refused)"  # no address
    assert status.since == status.last_success_at == clocks.now


def test_a_deliberate_disconnect_is_not_an_outage(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    link = make_link(clocks)
    link.before_connect()
    link.received()
    caplog.set_level(logging.INFO, logger="twin.telegram")
    link.closing()
    link.lost("connection closed")
    assert not link.connected and link.status().outage_since is None
    assert link.before_connect() == 0  # a later start connects at once
    link.received()
    assert link.reconnects == 0
    assert messages(caplog, logging.WARNING) == []


def test_cannot_connect_at_start_is_one_warning_and_not_a_reconnect(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    link = make_link(clocks)
    caplog.set_level(logging.INFO, logger="twin.telegram")
    for _ in range(3):
        link.before_connect()
        link.connect_failed(TimeoutError())
    link.before_connect()
    link.received()
    [warning] = messages(caplog, logging.WARNING)
    assert "cannot connect to Telegram (timed out)" in warning
    [info] = messages(caplog, logging.INFO)
    assert "connected to Telegram after" in info and "client API layer 229" in info
    assert link.reconnects == 0


def test_undecodable_updates_are_all_counted_and_reported_at_most_once_a_minute(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    link = make_link(clocks)
    caplog.set_level(logging.WARNING, logger="twin.telegram")
    for _ in range(5):
        link.undecodable(0xDEADBEEF)
    clocks.advance(UNDECODABLE_LOG_INTERVAL)
    link.undecodable(0x12345678)
    assert link.undecodable_updates == link.status().undecodable_updates == 6
    first, second = messages(caplog, logging.WARNING)
    assert "constructor deadbeef is unknown to client API layer 229" in first
    assert "1 so far" in first
    assert "6 so far (4 more since the last report)" in second


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_telethon_noise_filter(clocks: Clocks) -> None:
    link = make_link(clocks)
    parent = logging.getLogger("tests.link.parent")
    parent.setLevel(logging.WARNING)
    noise = TelethonNoise(link, parent)
    sender = "telethon.main.network.mtprotosender"
    # Telethon's INFO about an undecodable object: counted, never logged (it holds payload).
    assert not noise.filter(
        record(sender, logging.INFO, "Type %08x not found, remaining data %r", 0xDEADBEEF, b"hi")
    )
    assert link.undecodable_updates == 1
    # Per-attempt lines during an outage: muted.
    attempt = "Attempt %d at connecting failed: %s: %s"
    assert not noise.filter(record(sender, logging.WARNING, attempt, 3, "OSError", "refused"))
    # Everything else: what the parent's level lets through.
    assert not noise.filter(record(sender, logging.INFO, "Connecting to %s...", "x"))
    assert noise.filter(
        record(sender, logging.ERROR, "Automatic reconnection failed %d time(s)", 5)
    )


def test_filters_are_installed_once_per_account() -> None:
    link = LinkState("solo", POLICY, layer=229)
    install_log_filters("telethon.solo", link)
    install_log_filters("telethon.solo", link)  # a rebuilt client
    sender = logging.getLogger("telethon.solo.network.mtprotosender")
    assert len([f for f in sender.filters if isinstance(f, TelethonNoise)]) == 1
    # Telethon's INFO must pass the sender logger's level to reach the filter.
    assert sender.isEnabledFor(logging.INFO)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            ConnectionRefusedError(111, "Connect call failed ('10.1.2.3', 443)"),
            "ConnectionRefusedError (Connection refused)",
        ),
        (TimeoutError(), "timed out"),
        (ValueError("x"), "ValueError"),
    ],
)
def test_failures_are_described_without_addresses(exc: BaseException, text: str) -> None:
    assert describe(exc) == text
