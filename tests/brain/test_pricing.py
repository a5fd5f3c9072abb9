"""Per-call cost from configured per-model prices."""

from __future__ import annotations

import pytest

from twin.brain.pricing import DEFAULT_PRICES, Cost, Price, PriceTable
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


@pytest.mark.parametrize(
    ("model", "known"),
    [
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("gemini-1.5-flash-latest", "gemini-1.5-flash"),
        ("gemini-2.0-flash-exp", "gemini-2.0-flash"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("models/gemini-2.5-pro-exp-03-25", "gemini-2.5-pro"),
    ],
)
def test_a_version_of_a_built_in_model_takes_its_price(model: str, known: str) -> None:
    assert PriceTable(defaults=DEFAULT_PRICES).lookup(model) == DEFAULT_PRICES[known]


@pytest.mark.parametrize(
    "model",
    [
        "o3-pro",  # ten times o3's price
        "gpt-5-pro",
        "o3-deep-research",
        "gpt-4o-realtime-preview",
        "gpt-4o-mini-search-preview",
        "gemini-1.5-flash-8b",  # half gemini-1.5-flash's price
        "gemini-2.5-flash-image-preview",
        "gpt-4o-mini-custom",
    ],
)
def test_another_model_that_extends_a_known_name_is_not_priced_as_it(model: str) -> None:
    cost = PriceTable(defaults=DEFAULT_PRICES).cost(model, 1000, 1000)
    assert cost.priced is False
    assert cost.unpriced_models == (model,)


def test_configured_prices_override_the_built_in_ones_model_by_model() -> None:
    table = PriceTable({"gpt-4o": {"input": 1.0, "output": 2.0}}, defaults=DEFAULT_PRICES)
    assert table.lookup("gpt-4o-2024-08-06") == Price(1.0, 2.0)
    assert table.lookup("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]


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
