"""Per-call cost from configured per-model prices."""

from __future__ import annotations

import pytest

from twin.brain.pricing import Cost, Price, PriceTable
from twin.config import ModelPrice

PRICES = {
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": ModelPrice(input=0.15, output=0.6),
    "gemini-2.0-flash": Price(0.1, 0.4),
}


def test_exact_model() -> None:
    cost = PriceTable(PRICES).cost("gpt-4o", 1_000_000, 500_000)
    assert cost == Cost(2.5 + 5.0, True)


def test_dated_model_names_use_the_longest_prefix() -> None:
    table = PriceTable(PRICES)
    assert table.lookup("gpt-4o-mini-2024-07-18") == Price(0.15, 0.6)
    assert table.lookup("gpt-4o-2024-08-06") == Price(2.5, 10.0)
    assert table.lookup("models/Gemini-2.0-Flash-001") == Price(0.1, 0.4)


def test_unknown_model_costs_nothing_and_is_flagged() -> None:
    cost = PriceTable(PRICES).cost("llama3:8b", 1000, 1000)
    assert cost.usd == 0.0
    assert cost.priced is False
    assert cost.unpriced_models == ("llama3:8b",)


def test_total_over_calls() -> None:
    total = PriceTable(PRICES).total(
        [("gpt-4o-mini", 2_000_000, 0), ("gpt-4o-mini", 0, 1_000_000), ("mystery", 5, 5)]
    )
    assert total.usd == pytest.approx(0.3 + 0.6)
    assert not total.priced
    assert total.unpriced_models == ("mystery",)


def test_no_prices_at_all() -> None:
    assert PriceTable(None).cost("gpt-4o", 10, 10).priced is False
