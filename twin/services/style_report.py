"""The HTML report of `twin style eval`: one self-contained file (inline CSS and SVG, no script,
nothing fetched), readable offline and safe to open — every text is escaped by Jinja2's
autoescaping, the owner's and contacts' messages included.

Each feature is a grouped bar chart of its distribution: the owner's reference messages, the
owner's held-out answers (the ceiling) and the twin's answers, category by category; the tells
are one chart of rates. A few held-out contexts close it, with the owner's real answer and the
twin's, so the owner can read what the figures mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from twin.domain.style_eval import Sample

__all__ = ["render_report"]

SERIES = (("owner", "the owner (other messages)"), ("held_out", "the owner's held-out answers"),
          ("twin", "the twin"))
EXAMPLES = 10
_BAR, _GAP, _HEIGHT = 14, 10, 120


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    height: int
    series: str
    value: float


@dataclass(frozen=True)
class Chart:
    title: str
    subtitle: str
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[int, str]]  # x of each category's label


def _chart(title: str, subtitle: str, values: dict[str, dict[str, float]]) -> Chart:
    """`values`: {series: {category: share}} as grouped bars on one 0–1 scale."""
    categories = sorted({c for shares in values.values() for c in shares})
    group = _BAR * len(SERIES)
    bars, labels = [], []
    for index, category in enumerate(categories):
        left = 10 + index * (group + _GAP)
        labels.append((left + group // 2, category))
        for offset, (series, _) in enumerate(SERIES):
            value = values.get(series, {}).get(category, 0.0)
            height = round(_HEIGHT * min(1.0, value))
            bars.append(Bar(left + offset * _BAR, 10 + _HEIGHT - height, height, series, value))
    width = 20 + len(categories) * (group + _GAP)
    return Chart(title, subtitle, max(width, 160), _HEIGHT + 40, bars, labels)


def render_report(
    result: dict[str, Any],
    *,
    account: str,
    model: str,
    at: datetime,
    held: Sequence[Sample],
    answers: Sequence[tuple[str, ...] | None],
) -> str:
    from jinja2 import Environment, select_autoescape

    charts = [
        _chart(
            name,
            f"distance twin {figures['twin']:.2f} · owner's own ceiling {figures['ceiling']:.2f}",
            figures["distributions"],
        )
        for name, figures in result["features"].items()
    ]
    tells = result["tells"]
    tell_values = {
        series: {name: rates[series] for name, rates in tells.items()} for series, _ in SERIES
    }
    charts.append(_chart("AI tells", "share of messages", tell_values))
    examples = [
        {
            "context": [(turn.role, turn.text) for turn in sample.context[-4:]],
            "owner": sample.answer,
            "twin": answer,
        }
        for sample, answer in list(zip(held, answers, strict=True))[:EXAMPLES]
    ]
    template = resources.files("twin.services").joinpath("style_report.html").read_text("utf-8")
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return environment.from_string(template).render(
        result=result,
        account=account,
        model=model,
        at=at.strftime("%Y-%m-%d %H:%M UTC"),
        charts=charts,
        series=SERIES,
        examples=examples,
    )
