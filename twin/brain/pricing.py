"""Cost of a model call from per-model prices (USD per 1M input/output tokens).

Built-in list prices of the common models (`DEFAULT_PRICES`) are overridden, model by model,
by `[llm.prices]` in the config. Model names returned by providers often carry a date or
version suffix ("gpt-4o-mini-2024-07-18", "gemini-2.0-flash-001", "gemini-2.5-flash-preview-
05-20"), so a price applies to its exact name and, failing that, to the longest known name
followed only by such a suffix (`VERSION_SUFFIX`). Any other extension is another model with
another price ("o3-pro" is not "o3", "gpt-5-pro" not "gpt-5", "gemini-1.5-flash-8b" not
"gemini-1.5-flash"), so it is unknown rather than priced wrong. An unknown model is flagged
`priced=False`: its reply's cost is unknown (null), not 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_PRICES", "Cost", "Price", "PriceTable"]


@dataclass(frozen=True, slots=True)
class Price:
    input_per_million: float
    output_per_million: float


@dataclass(frozen=True, slots=True)
class Cost:
    usd: float
    priced: bool  # False: at least one model had no configured price (its cost counted as 0)
    unpriced_models: tuple[str, ...] = ()

    def __add__(self, other: Cost) -> Cost:
        unpriced = tuple(dict.fromkeys(self.unpriced_models + other.unpriced_models))
        return Cost(self.usd + other.usd, self.priced and other.priced, unpriced)

    @classmethod
    def zero(cls) -> Cost:
        return cls(0.0, True)


# Providers' list prices, USD per 1M input / output tokens (standard tier, text, no caching;
# Gemini 2.5 Pro's ≤200k-token prompt rate). Checked against the providers' pricing pages in
# 2025; override or add models in `[llm.prices]` (README, "Costs").
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    "gemini-1.5-pro": Price(1.25, 5.00),
    "gemini-1.5-flash": Price(0.075, 0.30),
}


# What may follow a known model name and still be that model: a date or version number
# ("-2024-07-18", "-001", "-0125"), a dated preview or experiment ("-preview-05-20",
# "-exp-03-25") or an alias ("-latest"), in any sequence.
VERSION_SUFFIX = re.compile(r"(?:-(?:\d+|latest|preview|exp))+")


def _as_price(value: Any) -> Price:
    """Accept Price, {"input": x, "output": y} or an object with .input/.output (config)."""
    if isinstance(value, Price):
        return value
    if isinstance(value, Mapping):
        return Price(float(value.get("input", 0.0)), float(value.get("output", 0.0)))
    return Price(float(value.input), float(value.output))


def _normalise(model: str) -> str:
    name = model.strip().lower()
    return name.removeprefix("models/")


class PriceTable:
    def __init__(
        self,
        prices: Mapping[str, Any] | None = None,
        *,
        defaults: Mapping[str, Price] | None = None,
    ) -> None:
        """`prices` (the config's) override `defaults` (pass DEFAULT_PRICES) model by model."""
        merged = {_normalise(name): _as_price(p) for name, p in (defaults or {}).items()}
        merged.update({_normalise(name): _as_price(p) for name, p in (prices or {}).items()})
        self._prices = merged
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def lookup(self, model: str) -> Price | None:
        name = _normalise(model)
        if name in self._prices:
            return self._prices[name]
        for known in self._by_length:
            if name.startswith(known) and VERSION_SUFFIX.fullmatch(name, len(known)):
                return self._prices[known]
        return None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> Cost:
        price = self.lookup(model)
        if price is None:
            return Cost(0.0, False, (model,))
        usd = (
            prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
        ) / 1_000_000
        return Cost(usd, True)

    def total(self, calls: Iterable[tuple[str, int, int]]) -> Cost:
        result = Cost.zero()
        for model, prompt_tokens, completion_tokens in calls:
            result = result + self.cost(model, prompt_tokens, completion_tokens)
        return result
