"""Reply jobs: retry a failed reply by hand.

A reply fails for good after a refusal (an invalid request, content refused: `failure` =
permanent), or after an outage that outlasted `[twin] max_attempts` (`outage`: re-queued by
itself once the provider answers again, unless its message is older than
`[telegram] max_catch_up_age`, then `expired`). `POST /replies/{id}/retry` re-queues any failed
one now, whatever its failure and age. The id is the `reply_id` that GET /messages shows.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName
from twin.errors import NotFound

routes = RouteTable(tags=("replies",))


class ReplyPath(ApiModel):
    reply_id: int = Field(ge=1, le=2**63 - 1, description="`reply_id` of GET /messages")


class RetryIn(ApiModel):
    account: str = AccountName


class ReplyOut(ApiModel):
    id: int
    state: str = Field(description="`scheduled`, or `sending` when its bubbles were stored")
    reason: str | None
    failure: str | None = Field(description="outage | permanent | expired, while failed")
    attempts: int
    reply_at: datetime


@routes.post("/replies/{reply_id}/retry", name="reply_retry", summary="Retry a failed reply now")
async def retry_reply(request: web.Request, path: ReplyPath, body: RetryIn) -> ReplyOut:
    """Re-queue a failed reply of the account with a fresh retry budget, whatever why it
    failed and however old it is. A reply whose bubbles were stored resumes sending them (the
    ones already sent are never sent again); any other is generated afresh. 404: no such
    reply of this account; 409: the reply is not failed (active, sent, skipped, cancelled)."""
    recovery = request.app[keys.SERVICES].get("recovery")
    if recovery is None:  # no database to run replies on
        raise ApiError(503, "Replies are not running.")
    try:
        account_id = await request.app[keys.DIRECTORY].id_of(body.account)
    except NotFound:
        raise NotFound(f"reply {path.reply_id} does not exist") from None
    reply = await recovery.retry(path.reply_id, account_id)
    return ReplyOut(
        id=reply.id,
        state=reply.state.value,
        reason=reply.reason,
        failure=reply.failure.value if reply.failure else None,
        attempts=reply.attempts,
        reply_at=reply.reply_at,
    )
