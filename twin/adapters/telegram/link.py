"""The real state of an account's link to Telegram, and the reconnect backoff that serves it.

Telethon's `is_connected()` only says that the *user* asked to be connected: it stays True while
the sender reconnects in the background, which is how `/auth/status` once said "connected" while
the server was down. `LinkState` is fed by the transport itself instead: `client.py` gives
Telethon a `Connection` subclass (Telethon's documented `connection=` hook) whose `connect`,
`recv` and `disconnect` report here. The link is *up* from the first packet the server sends on
a new connection (a TCP accept alone proves nothing) until that connection closes; a close the
daemon did not ask for starts an *outage*, which ends when the link is up again.

The same connection waits, before each attempt of an outage, the delay `twin.domain.backoff`
draws (decorrelated jitter, `[telegram] reconnect_backoff_*`), so a long outage costs a few
attempts a minute instead of Telethon's fixed one per second. An outage logs one WARNING when
it starts and one INFO with its duration when it ends; `TelethonNoise` mutes Telethon's
per-attempt lines and turns its INFO about undecodable updates into a WARNING and a counter.

Nothing here imports Telethon: the API reads `LinkStatus`, a plain snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from twin.domain.backoff import Backoff

log = logging.getLogger("twin.telegram")

UNDECODABLE_LOG_INTERVAL = 60.0  # seconds: at most one WARNING per account and interval
_KEPT_DELAYS = 64


@dataclass(frozen=True)
class LinkStatus:
    """What /auth/status, /ready and /metrics show about one account's link."""

    connected: bool
    since: datetime | None  # when the current state (connected or not) began
    last_update_at: datetime | None  # the last update Telegram delivered (and Telethon decoded)
    reconnects: int  # outages that ended with the link up again
    undecodable_updates: int  # updates dropped because the client could not decode them
    last_success_at: datetime | None  # when the link last came up
    last_error_at: datetime | None  # the last failed attempt or lost link
    last_error: str | None  # its short description (no addresses, no payloads)
    outage_since: datetime | None  # set while an outage lasts


def describe(exc: BaseException) -> str:
    """A short, address-free description of a connection failure."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the server"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        # Not exc.strerror: asyncio puts the address in it ("Connect call failed (host, port)").
        return f"{type(exc).__name__} ({os.strerror(exc.errno)})"
    return type(exc).__name__


class LinkState:
    """One account's link: transport events in, `LinkStatus` and backoff delays out."""

    def __init__(
        self,
        account: str,
        backoff: Backoff,
        *,
        layer: int,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.backoff = backoff
        self.layer = layer
        self.rng = rng or random.Random()  # replaceable: tests seed it
        self._clock = clock
        self._monotonic = monotonic
        self.connected = False
        self._since: datetime | None = None
        self._last_update_at: datetime | None = None
        self.reconnects = 0
        self.undecodable_updates = 0
        self._last_success_at: datetime | None = None
        self._last_error_at: datetime | None = None
        self._last_error: str | None = None
        self._outage_since: datetime | None = None
        self._outage_started: float | None = None  # monotonic, for the duration
        self._closing = False
        self._ever_up = False
        # Connect attempts since the link was last up, and the backoff of the current outage.
        self.attempts = 0
        self._previous_delay: float | None = None
        self.delays: list[float] = []  # the waits drawn in the current (or last) outage
        self._undecodable_logged_at: float | None = None
        self._undecodable_unlogged = 0
        self._waiters: list[asyncio.Future[None]] = []

    # --- transport events (the Connection subclass) --------------------------------------------
    def before_connect(self) -> float:
        """Count an attempt; the seconds to wait before it (0 for the first one after the link
        was up, or after a deliberate stop)."""
        self._closing = False
        delay = 0.0
        if self.attempts:
            delay = self.backoff.next_delay(self._previous_delay, self.rng)
            self._previous_delay = delay
            if len(self.delays) < _KEPT_DELAYS:
                self.delays.append(delay)
        self.attempts += 1
        self._notify()
        return delay

    def connect_failed(self, exc: BaseException) -> None:
        reason = describe(exc)
        self._error(reason)
        if self._outage_since is None and not self._closing:  # a start that cannot connect
            self._begin_outage()
            log.warning(
                "account %s: cannot connect to Telegram (%s); retrying with backoff",
                self.account,
                reason,
            )
        self._notify()

    def received(self) -> None:
        """A packet arrived: the link is up (a no-op while it already is)."""
        if self.connected:
            return
        now = self._clock()
        attempts = self.attempts
        self.connected = True
        self._since = self._last_success_at = now
        self.attempts = 0
        self._previous_delay = None
        if self._outage_started is None:
            log.info(
                "account %s: connected to Telegram (client API layer %d)", self.account, self.layer
            )
        elif self._ever_up:
            self.reconnects += 1
            log.info(
                "account %s: connection to Telegram restored after %.1f s (%d attempt(s))",
                self.account,
                self._monotonic() - self._outage_started,
                attempts,
            )
        else:
            log.info(
                "account %s: connected to Telegram after %.1f s (%d attempt(s); client API "
                "layer %d)",
                self.account,
                self._monotonic() - self._outage_started,
                attempts,
                self.layer,
            )
        self._outage_since = self._outage_started = None
        self._ever_up = True
        self._notify()

    def lost(self, reason: str) -> None:
        """The connection closed: an outage begins unless the daemon asked for it."""
        if not self.connected:
            if self._outage_since is not None:
                self._error(reason)  # an attempt that connected, then failed before any answer
            return
        self.connected = False
        self._since = self._clock()
        if self._closing:
            self._notify()
            return
        self._error(reason)
        self._begin_outage()
        log.warning(
            "account %s: connection to Telegram lost (%s); reconnecting with backoff "
            "(%.3g–%.3g s between attempts)",
            self.account,
            reason,
            self.backoff.base,
            self.backoff.cap,
        )
        self._notify()

    def closing(self) -> None:
        """The daemon is about to disconnect on purpose (stop, logout): not an outage."""
        self._closing = True
        self._outage_since = self._outage_started = None
        self.attempts = 0
        self._previous_delay = None
        self._ever_up = False  # the next connection is a first one, not a reconnect

    # --- client events -----------------------------------------------------------------------
    def update_received(self) -> None:
        self._last_update_at = self._clock()

    def undecodable(self, constructor_id: int) -> None:
        """Telethon dropped an object it could not decode: count it, say so (rate-limited)."""
        self.undecodable_updates += 1
        self._notify()
        now = self._monotonic()
        last = self._undecodable_logged_at
        if last is not None and now - last < UNDECODABLE_LOG_INTERVAL:
            self._undecodable_unlogged += 1
            return
        also = (
            f" ({self._undecodable_unlogged} more since the last report)"
            if self._undecodable_unlogged
            else ""
        )
        log.warning(
            "account %s: dropped an update the client cannot decode (constructor %08x is "
            "unknown to client API layer %d; is the server on a newer layer?); %d so far%s",
            self.account,
            constructor_id & 0xFFFFFFFF,
            self.layer,
            self.undecodable_updates,
            also,
        )
        self._undecodable_logged_at = now
        self._undecodable_unlogged = 0

    # --- reading -----------------------------------------------------------------------------
    def status(self) -> LinkStatus:
        return LinkStatus(
            connected=self.connected,
            since=self._since,
            last_update_at=self._last_update_at,
            reconnects=self.reconnects,
            undecodable_updates=self.undecodable_updates,
            last_success_at=self._last_success_at,
            last_error_at=self._last_error_at,
            last_error=self._last_error,
            outage_since=self._outage_since,
        )

    async def wait_until(self, predicate: Callable[[LinkState], object], timeout: float) -> None:
        """Wait until `predicate(self)` holds, re-checked on every link event."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

    # --- internals ---------------------------------------------------------------------------
    def _error(self, reason: str) -> None:
        self._last_error_at = self._clock()
        self._last_error = reason

    def _begin_outage(self) -> None:
        self._outage_since = self._clock()
        self._outage_started = self._monotonic()
        self.delays = []

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


# Telethon's per-attempt lines during an outage, muted: the outage's own WARNING replaces them.
_ATTEMPT_NOISE = frozenset(
    {
        "Attempt %d at connecting failed: %s: %s",
        "Connection error %d during auth_key gen: %s: %s",
        "Server closed the connection: %s",
    }
)
_UNDECODABLE = "Type %08x not found, remaining data %r"


class TelethonNoise(logging.Filter):
    """On an account's `telethon.<account>.network…` loggers: mutes per-attempt noise, turns
    "Type … not found" (an update dropped as undecodable, INFO in Telethon) into
    `LinkState.undecodable`, and otherwise lets through what the logger's parent level allows.

    A logger's level is checked *before* its filters, so the sender's logger is set to INFO
    for Telethon's INFO line to reach this filter at all; `threshold_of` then applies the level
    the logger would have had (the daemon keeps `telethon` at WARNING).
    """

    def __init__(self, link: LinkState, threshold_of: logging.Logger) -> None:
        super().__init__()
        self.link = link
        self._threshold_of = threshold_of

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _UNDECODABLE and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            if isinstance(args[0], int):
                self.link.undecodable(args[0])
            return False  # its "remaining data" may hold message text: never logged
        if record.msg in _ATTEMPT_NOISE:
            return False
        return record.levelno >= self._threshold_of.getEffectiveLevel()


def install_log_filters(base_logger: str, link: LinkState) -> None:
    """Attach `TelethonNoise` to the Telethon loggers of one account (replacing an earlier one:
    a client rebuilt for the same account must not count twice)."""
    network = logging.getLogger(f"{base_logger}.network")
    sender = logging.getLogger(f"{base_logger}.network.mtprotosender")
    connection = logging.getLogger(f"{base_logger}.network.connection.connection")
    for logger in (sender, connection):
        for old in [f for f in logger.filters if isinstance(f, TelethonNoise)]:
            logger.removeFilter(old)
        logger.addFilter(TelethonNoise(link, network if logger is sender else connection))
    sender.setLevel(min(logging.INFO, network.getEffectiveLevel()))
