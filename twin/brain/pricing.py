"""Cost of a model call from per-model prices (USD per 1M input/output tokens) in the config.

Model names returned by providers often carry a date or version suffix ("gpt-4o-mini-2024-07-18",
"gemini-2.0-flash-001"), so a price applies to its exact name and, failing that, to the longest
configured name the model starts with. An unknown model costs 0 and is flagged `priced=False`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Cost", "Price", "PriceTable"]


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
    def __init__(self, prices: Mapping[str, Any] | None = None) -> None:
        self._prices = {_normalise(name): _as_price(p) for name, p in (prices or {}).items()}
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def lookup(self, model: str) -> Price | None:
        name = _normalise(model)
        if name in self._prices:
            return self._prices[name]
        for known in self._by_length:
            if name.startswith(known):
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
