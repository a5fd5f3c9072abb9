"""The safety governor in GET /metrics (the API's registry): calls, waits, refusals and
Telegram's warnings by account and category, and each account's mode and sends of the last
24 h (twin.services.safety counts them; lifecycle wires this in)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import GaugeMetricFamily

from twin.domain.safety import AccountMode

if TYPE_CHECKING:
    from twin.services.safety import Safety


class SafetyMetrics:
    """The governor in GET /metrics (the API's registry): calls, waits, refusals and Telegram's
    warnings by account and category, and each account's mode and sends of the last 24 h."""

    def __init__(self, registry: CollectorRegistry, safety: Safety) -> None:
        labels = ("account", "category")
        self.counters = {
            "call": Counter(
                "twin_telegram_calls",
                "Telegram calls admitted, by category.",
                labels,
                registry=registry,
            ),
            "waited": Counter(
                "twin_telegram_calls_waited",
                "Calls that waited for their turn (a bucket, or a short FLOOD_WAIT).",
                labels,
                registry=registry,
            ),
            "refused": Counter(
                "twin_telegram_calls_refused",
                "Calls refused by the governor (retried later): a long wait, a budget.",
                labels,
                registry=registry,
            ),
            "flood_wait": Counter(
                "twin_telegram_flood_waits",
                "FLOOD_WAITs from Telegram.",
                labels,
                registry=registry,
            ),
            "spam_limit": Counter(
                "twin_telegram_spam_limits",
                "Spam-limit refusals from Telegram (PEER_FLOOD…).",
                labels,
                registry=registry,
            ),
        }
        self.flood_seconds = Counter(
            "twin_telegram_flood_wait_seconds",
            "Seconds Telegram asked to wait, in total.",
            labels,
            registry=registry,
        )
        registry.register(_ModeCollector(safety))

    def __call__(self, kind: str, account: str, category: str, seconds: float) -> None:
        self.counters[kind].labels(account, category).inc()
        if kind == "flood_wait":
            self.flood_seconds.labels(account, category).inc(seconds)


class _ModeCollector:
    def __init__(self, safety: Safety) -> None:
        self._safety = safety

    def collect(self) -> Any:
        safety = self._safety
        modes = GaugeMetricFamily(
            "twin_account_mode",
            "1 for the account's current mode (active, draft, off).",
            labels=("account", "mode"),
        )
        sends = GaugeMetricFamily(
            "twin_account_sends_24h",
            "Messages the account sent in the last 24 h (the daily budget's count).",
            labels=("account",),
        )
        now = safety.now()
        for name, ledger in sorted(safety.ledgers().items()):
            account_id = safety.account_id(name)
            mode = safety.mode_of(account_id) if account_id is not None else AccountMode.ACTIVE
            for value in AccountMode:
                modes.add_metric([name, value.value], 1.0 if value is mode else 0.0)
            sends.add_metric([name], ledger.snapshot(now).sends_last_day)
        yield modes
        yield sends
