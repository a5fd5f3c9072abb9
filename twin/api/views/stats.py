"""`GET /stats`: what the twin did per UTC day (definitions: `twin.db.repo.stats`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.fields import IsoDate
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName
from twin.db.repo.stats import MAX_DAYS, DayStats

routes = RouteTable(tags=("observability",))


class StatsQuery(ApiModel):
    account: str = AccountName
    days: int = Field(7, ge=1, le=MAX_DAYS, description="how many UTC days, ending with `to`")
    to: IsoDate | None = Field(
        None,
        description="the last UTC day (YYYY-MM-DD); default today. The range never starts "
        "before 0001-01-01.",
    )


class FiguresOut(ApiModel):
    received: int = Field(description="incoming messages")
    replied: int = Field(description="replies sent (away messages included)")
    skipped: dict[str, int] = Field(
        description="skipped replies and skipped messages without a reply job, by reason"
    )
    skipped_total: int
    deferred: int = Field(description='replies decided as "defer" (to the next opening)')
    escalated: int = Field(description="handed to the owner (also in skipped.escalated)")
    failed: int
    cancelled: int = Field(description="replies cancelled (owner took over, pause, deletion …)")
    replies_timed: int = Field(description="sent replies with a measured time to reply")
    median_reply_seconds: float | None = Field(
        description="median time from the first message answered to the reply being sent"
    )
    p95_reply_seconds: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = Field(description="LLM usage of replies plus per-message costs (STT …)")


class DayOut(FiguresOut):
    date: dt.date


class StatsOut(ApiModel):
    account: str
    from_: dt.date = Field(alias="from")
    to: dt.date
    totals: FiguresOut
    days: list[DayOut] = Field(description="every day of the range, oldest first")


def _figures(stats: DayStats) -> dict[str, Any]:
    return {
        "received": stats.received,
        "replied": stats.replied,
        "skipped": stats.skipped,
        "skipped_total": stats.skipped_total,
        "deferred": stats.deferred,
        "escalated": stats.escalated,
        "failed": stats.failed,
        "cancelled": stats.cancelled,
        "replies_timed": stats.replies_timed,
        "median_reply_seconds": stats.median_reply_seconds,
        "p95_reply_seconds": stats.p95_reply_seconds,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "cost_usd": stats.cost_usd,
    }


@routes.get("/stats", name="stats", summary="Activity per day: replies, skips, latency, cost")
async def stats(request: web.Request, query: StatsQuery) -> StatsOut:
    """Per UTC day and in total: messages received, replies sent, skips by reason, deferrals,
    escalations, failures, median/p95 time to reply (seconds), tokens and cost."""
    end = query.to or request.app[keys.CLOCK].now().date()  # a UTC day
    start = dt.date.fromordinal(max(1, end.toordinal() - (query.days - 1)))
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    report = await request.app[keys.DATABASE].repo.activity_stats(account_id, start, end)
    return StatsOut.model_validate(
        {
            "account": query.account,
            "from": report.start,
            "to": report.end,
            "totals": _figures(report.totals),
            "days": [{"date": day.day, **_figures(day)} for day in report.days],
        }
    )
