"""`GET /api/v1/analytics/metrics`: conversations, messages, response time, platforms, tokens
and cost over a date range, for business integrations (twin.db.repo.analytics computes them
in the database)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.auth import principal_of
from twin.api.errors import ApiError
from twin.api.fields import IsoDate
from twin.api.ratelimit import count_group
from twin.api.validation import ApiModel, RouteTable

routes = RouteTable(tags=("analytics",))

MAX_DAYS = 366
Platform = Literal["telegram", "http_chat", "talkme", "external"]


class MetricsQuery(ApiModel):
    start_date: IsoDate | None = Field(None, description="first UTC day (default: 30 days back)")
    end_date: IsoDate | None = Field(None, description="last UTC day, inclusive (default: today)")
    user_id: str | None = Field(
        None, min_length=1, max_length=128, description="one conversation: its id on the channel"
    )
    platform: Platform | None = None


class ConversationsOut(ApiModel):
    total: int = Field(description="conversations with a message in the range")
    successful: int = Field(description="answered, and never handed to a person")
    escalated: int = Field(description="handed to a person (the owner or an operator)")


class MessagesOut(ApiModel):
    total: int
    inbound: int
    outbound: int
    avg_response_time: float | None = Field(
        description="seconds from a user's message to the twin's answer, on average"
    )


class PlatformOut(ApiModel):
    messages: int
    users: int = Field(description="distinct conversations")


class MetricsOut(ApiModel):
    start_date: dt.date
    end_date: dt.date
    conversations: ConversationsOut
    messages: MessagesOut
    platforms: dict[str, PlatformOut]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@routes.get(
    "/api/v1/analytics/metrics",
    name="analytics_metrics",
    summary="Conversations, messages and cost over a date range",
    scope="analytics",
)
async def analytics_metrics(request: web.Request, query: MetricsQuery) -> MetricsOut:
    """Figures over the UTC days `start_date`..`end_date`, every channel (or `platform`), every
    conversation (or `user_id`), computed by the database. A key bound to an account sees its
    own account's figures only."""
    principal = principal_of(request)
    await count_group(request, "analytics", principal.name if principal else "", "API key")
    today = request.app[keys.CLOCK].now().date()
    end = query.end_date or today
    start = query.start_date or end - dt.timedelta(days=29)
    if end < start:
        raise ApiError(422, "end_date is before start_date", details=[("end_date", str(end))])
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, f"at most {MAX_DAYS} days at once", details=[("start_date", "")])
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    until = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    account_ids = None
    if principal is not None and principal.account is not None:
        account_ids = [await request.app[keys.DIRECTORY].id_of(principal.account)]
    metrics = await request.app[keys.DATABASE].repo.analytics(
        since, until, platform=query.platform, user=query.user_id, account_ids=account_ids
    )
    return MetricsOut(
        start_date=start,
        end_date=end,
        conversations=ConversationsOut(
            total=metrics.conversations,
            successful=metrics.successful,
            escalated=metrics.escalated,
        ),
        messages=MessagesOut(
            total=metrics.messages,
            inbound=metrics.inbound,
            outbound=metrics.outbound,
            avg_response_time=metrics.avg_response_time,
        ),
        platforms={name: PlatformOut(**figures) for name, figures in metrics.platforms.items()},
        prompt_tokens=metrics.prompt_tokens,
        completion_tokens=metrics.completion_tokens,
        cost_usd=metrics.cost_usd,
    )
