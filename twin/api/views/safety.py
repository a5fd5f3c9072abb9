"""The safety governor of an account (twin.services.safety): what it counts and allows, and the
account's mode — active, draft (replies written for the owner, not sent) or off — which the
governor sets when Telegram warns and only the owner sets back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.accounts import AccountPath
from twin.domain.safety import AccountMode

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
    """404: no such account. Answered by the process serving the account (forwarded there)."""
    await _here(request, path.name)
    return SafetyOut(**await request.app[keys.SAFETY].report(path.name))


@routes.put(
    "/accounts/{name}/safety",
    name="account_mode",
    summary="Set the account's mode (turn the twin back on after the governor stopped it)",
)
async def put_mode(request: web.Request, path: AccountPath, body: ModeIn) -> SafetyOut:
    """The owner's choice, stored with its reason; the governor never sets `active` itself.
    404: no such account. Another twin process serves it (its mode is held there): the request
    is forwarded to that process (twin.api.forwarding), or 409 when it cannot be reached."""
    await _here(request, path.name)
    safety = request.app[keys.SAFETY]
    reason = body.reason or f"set to {body.mode} by the owner"
    await safety.set_mode(path.name, AccountMode(body.mode), reason=reason)
    return SafetyOut(**await safety.report(path.name))


async def _here(request: web.Request, name: str) -> None:
    """Answered by the process serving the account, which holds its ledger and mode: one that
    does not is ServedElsewhere (the request is forwarded there, twin.api.forwarding)."""
    accounts = request.app.get(keys.ACCOUNTS)
    if accounts is not None:
        await accounts.require_here(name)
