"""The safety governor of an account (twin.services.safety): what it counts and allows, and the
account's mode — active, draft (replies written for the owner, not sent) or off — which the
governor sets when Telegram warns and only the owner sets back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.accounts import AccountPath
from twin.domain.safety import AccountMode
from twin.errors import Conflict

routes = RouteTable(tags=("accounts",))

Mode = Literal["active", "draft", "off"]


class CategoryOut(ApiModel):
    last_hour: int
    last_day: int
    per_hour: float | None = Field(description="the bucket's refill rate (null: not throttled)")
    burst: int | None
    available: float | None = Field(description="tokens saved up now")
    blocked_for: float = Field(description="seconds Telegram still asks this category to wait")


class BudgetOut(ApiModel):
    last_24h: int
    budget: int = Field(
        description="in any 24 h (sends: 0 = no limit; first contacts: 0 = none allowed)"
    )


class FloodWaitsOut(ApiModel):
    last_hour: int
    last_24h: int
    seconds_24h: float = Field(description="the waits' total, in seconds")
    trip_after: int = Field(description="this many in an hour trip the governor (0: never)")


class SpamLimitsOut(ApiModel):
    last_24h: int = Field(description="PEER_FLOOD and other spam-limit refusals")


class SafetyOut(ApiModel):
    account: str
    mode: Mode
    reason: str = Field(description="why the mode was set (empty: never changed)")
    set_by: Literal["owner", "governor"] | None
    changed_at: datetime | None
    calls: dict[str, CategoryOut] = Field(
        description="Telegram calls by category (send, resolve, dialogs, history, upload, "
        "other) counted by this process, with each category's bucket"
    )
    sends: BudgetOut
    first_contacts: BudgetOut
    flood_waits: FloodWaitsOut
    spam_limits: SpamLimitsOut
    on_trip: Literal["draft", "off"] = Field(description="what a trip switches the account to")


class ModeIn(ApiModel):
    mode: Mode = Field(description="active: answer; draft: write replies, send none; off")
    reason: str = Field("", max_length=300, description="kept with the mode and shown")


@routes.get(
    "/accounts/{name}/safety",
    name="account_safety",
    summary="The safety governor: calls, budgets, flood waits and the account's mode",
)
async def get_safety(request: web.Request, path: AccountPath) -> SafetyOut:
    """404: no such account."""
    return SafetyOut(**await request.app[keys.SAFETY].report(path.name))


@routes.put(
    "/accounts/{name}/safety",
    name="account_mode",
    summary="Set the account's mode (turn the twin back on after the governor stopped it)",
)
async def put_mode(request: web.Request, path: AccountPath, body: ModeIn) -> SafetyOut:
    """The owner's choice, stored with its reason; the governor never sets `active` itself.
    404: no such account; 409: another twin process serves it (its mode is held there: ask
    that process, GET /cluster says which)."""
    accounts = request.app.get(keys.ACCOUNTS)
    ownership = getattr(accounts, "ownership", None)
    if ownership is not None and ownership.shared:
        account_id = await request.app[keys.DIRECTORY].id_of(path.name)
        if not ownership.owns(account_id) and await _served_elsewhere(request, path.name):
            raise Conflict(
                f"account '{path.name}' is served by another twin process (GET /cluster): "
                "set its mode there"
            )
    safety = request.app[keys.SAFETY]
    reason = body.reason or f"set to {body.mode} by the owner"
    await safety.set_mode(path.name, AccountMode(body.mode), reason=reason)
    return SafetyOut(**await safety.report(path.name))


async def _served_elsewhere(request: web.Request, name: str) -> bool:
    """Whether a live process of the cluster lists the account (one nobody serves may have
    its mode set anywhere: the process that takes it reads it from the database)."""
    settings = request.app[keys.SETTINGS]
    since = request.app[keys.CLOCK].now() - timedelta(seconds=settings.cluster.dead_after_seconds)
    rows = await request.app[keys.DATABASE].repo.cluster_processes()
    return any(name in row.accounts and row.heartbeat_at >= since for row in rows)
