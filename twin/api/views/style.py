"""The owner's learned style profile (built by `twin style build`) and the style scores measured
by `twin style eval`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable
from twin.domain.style import render_style
from twin.domain.timing import DAYS, LearnedTiming
from twin.errors import NotFound
from twin.services.style import stored_style

routes = RouteTable(tags=("style",))


class StyleQuery(ApiModel):
    account: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class HourTimingOut(ApiModel):
    day: str = Field(description="Mon … Sun, in the timing's time zone")
    hour: int
    samples: int = Field(description="replies measured in this hour of the week")
    source: str = Field(
        description="what a read delay at this hour is drawn from: this hour of the week "
        '("Tue 14h"), the hour on any day ("14h on any day"), "any time", or "configured" '
        "(too few replies measured: [humanize] read_delay_median/sigma)"
    )
    median_s: float | None = Field(description="the median of that source, seconds")


class ContactTimingOut(ApiModel):
    chat_id: int | str
    samples: int
    median_s: float


class TimingOut(ApiModel):
    summary: str
    timezone: str = Field(description="the zone the hours of the week are in")
    samples: int = Field(description="reply latencies measured (each under the 12 h cap)")
    over_cap: int = Field(description="gaps over 12 h: not counted as replies")
    median_s: float | None = Field(description="None: fewer than 20 replies measured")
    p25_s: float | None
    p75_s: float | None
    p90_s: float | None
    hours: list[HourTimingOut] = Field(description="the 168 hours of the week, Monday 00h first")
    contacts: list[ContactTimingOut] = Field(
        description="contacts with 20 or more replies measured: drawn from their own"
    )
    typing_cps: float | None = Field(description="the owner's typing speed; None: unmeasured")
    typing_samples: int


class StyleOut(ApiModel):
    account: str
    message_count: int
    summary: str = Field(description="the profile as the prompt describes it")
    profile: dict[str, Any] = Field(description="the statistics: lengths, rates, languages, …")
    timing: TimingOut = Field(
        description="the owner's reply latency and typing speed, what `[humanize] learned` uses"
    )


@routes.get("/style", name="style", summary="The learned style profile")
async def style(request: web.Request, query: StyleQuery) -> StyleOut:
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    stored = await stored_style(request.app[keys.DATABASE].repo, account_id)
    if stored is None:
        raise NotFound("no style profile yet: run `twin style build`")
    profile, timing = stored
    data = _plain(profile)
    data.pop("examples", None)  # private message texts stay out of the API
    return StyleOut(
        account=query.account,
        message_count=profile.message_count,
        summary=render_style(profile, detail="brief"),
        profile=data,
        timing=_timing(timing),
    )


class StyleEvalsQuery(ApiModel):
    account: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    limit: int = Field(20, ge=1, le=100)


class StyleEvalOut(ApiModel):
    id: int
    account: str
    created_at: datetime
    model: str
    samples: int = Field(
        description="held-out answers of the owner (`result.answered` of them the twin answered)"
    )
    score: int = Field(description="0–100; `result.formula` says how it is made")
    report_path: str | None = Field(description="the HTML report, on the machine that ran it")
    result: dict[str, Any] = Field(
        description="components (style, authorship, tells), per feature the Jensen–Shannon "
        "distances of the twin and of the owner's own held-out answers (the ceiling) with the "
        "distributions, the tells' rates, the authorship model's verdicts, tokens and cost"
    )


class StyleEvalsOut(ApiModel):
    evals: list[StyleEvalOut] = Field(description="newest first")


@routes.get("/style/evals", name="style_evals", summary="The measured style scores")
async def style_evals(request: web.Request, query: StyleEvalsQuery) -> StyleEvalsOut:
    """Every `twin style eval` of the account, newest first: how much the twin's answers to
    held-out conversations read like the owner's own answers (no message text is stored)."""
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    found = await request.app[keys.DATABASE].repo.style_evals(account_id, limit=query.limit)
    return StyleEvalsOut(
        evals=[
            StyleEvalOut(
                id=e.id,
                account=e.account,
                created_at=e.created_at,
                model=e.model,
                samples=e.samples,
                score=e.score,
                report_path=e.report_path,
                result=e.result,
            )
            for e in found
        ]
    )


def _timing(timing: LearnedTiming) -> TimingOut:
    overall = timing.overall

    def quantile(q: float) -> float | None:
        return None if overall is None else overall.quantile(q)

    hours = []
    for key, level in enumerate(timing.hours):
        hours.append(
            HourTimingOut(
                day=DAYS[key // 24],
                hour=key % 24,
                samples=timing.measured[key] if timing.measured else 0,
                source="configured" if level is None else level.label,
                median_s=None if level is None else level.median_s,
            )
        )
    return TimingOut(
        summary=timing.describe(),
        timezone=timing.timezone,
        samples=timing.samples,
        over_cap=timing.over_cap,
        median_s=quantile(0.5),
        p25_s=quantile(0.25),
        p75_s=quantile(0.75),
        p90_s=quantile(0.9),
        hours=hours,
        contacts=[
            ContactTimingOut(chat_id=chat, samples=level.samples, median_s=level.median_s)
            for chat, level in sorted(timing.contacts.items(), key=lambda kv: -kv[1].samples)
        ],
        typing_cps=None if timing.typing_cps is None else round(timing.typing_cps, 2),
        typing_samples=timing.typing_samples,
    )


def _plain(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
