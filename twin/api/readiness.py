"""Readiness: the state of every dependency, for `GET /ready` and `GET /metrics`.

One snapshot serves both: the database (its last ping), each Telegram account (its real link
state, see twin/adapters/telegram/link.py) and the components whose callers report to the
health registry (llm, stt, tts: `twin.services.health`). The daemon is *ready* when the database
answers and every account that is (or may be) logged in is connected; the other components are
reported, not required: a failing LLM is retried per reply and does not make the daemon useless.

Nothing private leaves here: account names, states, times and short error texts (redacted, no
phone numbers, user ids or addresses).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from twin import keys
from twin.errors import clip
from twin.logs import redactor

log = logging.getLogger("twin.api.health")


Status = Literal["ok", "down", "unknown"]


@dataclass
class Probe:
    """The database's last ping outcomes (the only component probed on demand)."""

    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    up: bool | None = None


PROBE = web.AppKey("twin_database_probe", Probe)


@dataclass(frozen=True)
class Component:
    name: str
    status: Status
    required: bool  # whether readiness waits for it
    last_success_at: datetime | None
    last_error_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class TelegramComponent(Component):
    account: str = ""
    authorized: bool = False
    connected: bool = False
    since: datetime | None = None
    last_update_at: datetime | None = None
    reconnects: int = 0
    undecodable_updates: int = 0


@dataclass(frozen=True)
class Readiness:
    database: Component
    telegram: list[TelegramComponent] = field(default_factory=list)
    dependencies: list[Component] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        required = [self.database, *self.telegram, *self.dependencies]
        return all(c.status == "ok" for c in required if c.required)


def short_error(text: str | None) -> str | None:
    """An error text fit for a public answer: redacted, one line, bounded."""
    if not text:
        return None
    return clip(redactor(" ".join(text.split())))


def probe_of(app: web.Application) -> Probe:
    return app[PROBE]  # created by `install`, before the app is frozen


async def ping_database(app: web.Application, timeout: float) -> bool:
    """Ping the database (for at most `timeout` seconds) and remember the outcome."""
    probe = probe_of(app)
    database = app.get(keys.DATABASE)
    error: str | None = None
    try:
        if database is None:
            error = "not opened"
        else:
            async with asyncio.timeout(timeout):
                if not await database.ping():
                    error = "ping failed"
    except TimeoutError:
        error = f"no answer within {timeout:g} s"
    except Exception as exc:
        log.warning("database ping failed: %s: %s", type(exc).__name__, exc)
        error = type(exc).__name__  # the exception text may name hosts or users
    now = app[keys.CLOCK].now() if keys.CLOCK in app else datetime.now(UTC)
    probe.up = error is None
    if error is None:
        probe.last_success_at = now
    else:
        probe.last_error_at, probe.last_error = now, error
    return error is None


def snapshot(app: web.Application) -> Readiness:
    """Every component's state as last known (call `ping_database` first for a fresh one)."""
    probe = probe_of(app)
    database = Component(
        name="database",
        status="unknown" if probe.up is None else "ok" if probe.up else "down",
        required=True,
        last_success_at=probe.last_success_at,
        last_error_at=probe.last_error_at,
        error=probe.last_error,
    )
    return Readiness(database, _telegram(app), _dependencies(app))


def _telegram(app: web.Application) -> list[TelegramComponent]:
    accounts = app.get(keys.ACCOUNTS)
    if accounts is None or not accounts.configured:
        return []
    found = []
    for account in sorted(accounts.known(), key=lambda a: a.name):
        link = account.link_status()
        connected = account.connected
        found.append(
            TelegramComponent(
                name=f"telegram:{account.name}",
                status="ok" if connected else "down",
                required=account.expects_link,
                last_success_at=link.last_success_at,
                last_error_at=link.last_error_at,
                error=None if connected else short_error(link.last_error),
                account=account.name,
                authorized=account.authorized,
                connected=connected,
                since=link.since,
                last_update_at=link.last_update_at,
                reconnects=link.reconnects,
                undecodable_updates=link.undecodable_updates,
            )
        )
    return found


def _dependencies(app: web.Application) -> list[Component]:
    health = app.get(keys.HEALTH)
    if health is None:
        return []
    found = []
    for state in health.components():
        status: Status = "down" if state.failing else "ok" if state.last_success_at else "unknown"
        found.append(
            Component(
                name=state.name,
                status=status,
                required=False,
                last_success_at=state.last_success_at,
                last_error_at=state.last_error_at,
                error=short_error(state.last_error) if state.failing else None,
            )
        )
    return found


# --- Prometheus -----------------------------------------------------------------------------


class ReadinessCollector(Collector):
    """Exposes the snapshot in the app's registry at every scrape (no state of its own)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def describe(self) -> list[Metric]:
        return []  # families depend on the accounts known at scrape time

    def collect(self) -> Iterator[Metric]:
        state = snapshot(self._app)
        ready = GaugeMetricFamily("twin_ready", "1 when GET /ready answers 200, else 0.")
        ready.add_metric([], 1.0 if state.ready else 0.0)
        yield ready
        yield from self._components([state.database, *state.dependencies])
        yield from self._telegram(state.telegram)

    @staticmethod
    def _components(components: list[Component]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "twin_component_up",
            "1 when the component's last outcome was a success, 0 after a failure "
            "(absent while unknown): database, llm, stt, tts.",
            labels=["component"],
        )
        success = GaugeMetricFamily(
            "twin_component_last_success_timestamp_seconds",
            "When the component last worked (Unix time).",
            labels=["component"],
        )
        failure = GaugeMetricFamily(
            "twin_component_last_error_timestamp_seconds",
            "When the component last failed (Unix time).",
            labels=["component"],
        )
        for component in components:
            if component.status != "unknown":
                up.add_metric([component.name], 1.0 if component.status == "ok" else 0.0)
            for family, value in (
                (success, component.last_success_at),
                (failure, component.last_error_at),
            ):
                if value is not None:
                    family.add_metric([component.name], value.timestamp())
        yield from (up, success, failure)

    @staticmethod
    def _telegram(accounts: list[TelegramComponent]) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "twin_telegram_connected",
            "1 while the account's link to Telegram is up (from the transport, not Telethon's "
            "is_connected()).",
            labels=["account"],
        )
        reconnects = CounterMetricFamily(
            "twin_telegram_reconnects",
            "Outages of the account's link that ended with the link up again.",
            labels=["account"],
        )
        last_update = GaugeMetricFamily(
            "twin_telegram_last_update_timestamp_seconds",
            "When Telegram last delivered an update the client could decode (Unix time).",
            labels=["account"],
        )
        undecodable = CounterMetricFamily(
            "twin_telegram_undecodable_updates",
            "Updates the client dropped because it could not decode them (layer mismatch).",
            labels=["account"],
        )
        for account in accounts:
            label = [account.account]
            connected.add_metric(label, 1.0 if account.connected else 0.0)
            reconnects.add_metric(label, float(account.reconnects))
            undecodable.add_metric(label, float(account.undecodable_updates))
            if account.last_update_at is not None:
                last_update.add_metric(label, account.last_update_at.timestamp())
        yield from (connected, reconnects, last_update, undecodable)


def install(app: web.Application, registry: CollectorRegistry) -> None:
    """Register the collector in the app's registry (`twin.api.metrics.ApiMetrics.registry`)."""
    app[PROBE] = Probe()
    registry.register(ReadinessCollector(app))
