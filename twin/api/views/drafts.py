"""The owner's drafts (copilot mode: `[twin] mode = "draft"`, or an account in draft mode):
list them, send one (as written or with your own text), skip one (twin.services.drafts); and
the corrections those decisions leave, which become the prompt's first examples
(twin.services.corrections): list them, delete one."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName
from twin.db.records_drafts import CorrectionRecord, DraftRecord
from twin.errors import NotFound
from twin.services.drafts import MAX_TEXT

routes = RouteTable(tags=("drafts",))

DraftState = Literal["pending", "sent", "skipped", "expired", "superseded", "cancelled", "all"]


class DraftsQuery(ApiModel):
    account: str = AccountName
    state: DraftState = Field("pending", description="which drafts; `all`: every state")
    limit: int = Field(50, ge=1, le=500)


class DraftPath(ApiModel):
    draft_id: int = Field(ge=1, le=2**63 - 1)


class DraftOut(ApiModel):
    id: int
    account: str
    chat: int = Field(description="Telegram peer id of the chat")
    title: str | None
    state: str = Field(description="pending | sent | skipped | expired | superseded | cancelled")
    reason: str | None = Field(
        description="why it was decided: as written | edited | on expiry (sent); owner "
        "(skipped); expired; regenerated (superseded); paused (cancelled: the owner wrote)"
    )
    text: str = Field(description="what the twin wrote")
    final_text: str | None = Field(description="what was sent (the text, or the owner's edit)")
    reply: int = Field(description="the job that wrote it (`reply_id` of GET /messages)")
    sent_reply: int | None = Field(description="the job that sends it, once sent")
    created_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None


class DraftsOut(ApiModel):
    drafts: list[DraftOut] = Field(description="newest first")


class SendIn(ApiModel):
    account: str = AccountName
    text: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT,
        pattern=r"^[^\x00]*[^\s\x00][^\x00]*$",  # something to say, and no NUL
        description="what to send instead of the draft; left out: the draft as written",
    )


class SkipIn(ApiModel):
    account: str = AccountName


def _out(draft: DraftRecord) -> DraftOut:
    return DraftOut(
        id=draft.id,
        account=draft.account,
        chat=draft.peer_id,
        title=draft.title,
        state=draft.state,
        reason=draft.reason,
        text=draft.text,
        final_text=draft.final_text,
        reply=draft.reply_id,
        sent_reply=draft.sent_reply_id,
        created_at=draft.created_at,
        expires_at=draft.expires_at,
        decided_at=draft.decided_at,
    )


async def _owned(request: web.Request, draft_id: int, account: str) -> None:
    """404 unless the draft is the account's (a key bound to another account sees none)."""
    try:
        account_id = await request.app[keys.DIRECTORY].id_of(account)
        draft = await request.app[keys.DRAFTS].get(draft_id)
    except NotFound:
        raise NotFound(f"draft {draft_id} does not exist") from None
    if draft.account_id != account_id:
        raise NotFound(f"draft {draft_id} does not exist")


@routes.get("/drafts", name="drafts", summary="The owner's drafts")
async def drafts(request: web.Request, query: DraftsQuery) -> DraftsOut:
    """Replies the twin wrote for the owner to decide (draft mode), newest first: the pending
    ones by default."""
    state = None if query.state == "all" else query.state
    found = await request.app[keys.DRAFTS].list(query.account, state, query.limit)
    return DraftsOut(drafts=[_out(d) for d in found])


@routes.post("/drafts/{draft_id}/send", name="draft_send", summary="Send a draft")
async def send_draft(request: web.Request, path: DraftPath, body: SendIn) -> DraftOut:
    """Send the draft as written, or `text` instead: delivered like any reply (exactly once,
    typing at the owner's pace), without asking the model again. 404: no such draft of this
    account; 409: decided already (sent, skipped, expired, superseded by a newer draft for
    the chat, or cancelled because the owner wrote there)."""
    await _owned(request, path.draft_id, body.account)
    draft, _ = await request.app[keys.DRAFTS].send(path.draft_id, body.text)
    return _out(draft)


@routes.post("/drafts/{draft_id}/skip", name="draft_skip", summary="Skip a draft")
async def skip_draft(request: web.Request, path: DraftPath, body: SkipIn) -> DraftOut:
    """Send nothing for this draft. 404: no such draft of this account; 409: decided already."""
    await _owned(request, path.draft_id, body.account)
    return _out(await request.app[keys.DRAFTS].skip(path.draft_id))


# --- corrections --------------------------------------------------------------------------------


class CorrectionsQuery(ApiModel):
    account: str = AccountName
    limit: int = Field(50, ge=1, le=500)


class CorrectionPath(ApiModel):
    correction_id: int = Field(ge=1, le=2**63 - 1)


class CorrectionOut(ApiModel):
    id: int
    account: str
    chat: int = Field(description="Telegram peer id of the chat")
    kind: str = Field(description="approved (sent unchanged) | edited | skipped")
    context: str = Field(description="what the contact wrote")
    twin_text: str = Field(description="what the twin wrote")
    owner_text: str | None = Field(description="what the owner sent (none when skipped)")
    draft: int | None
    created_at: datetime


class CorrectionsOut(ApiModel):
    corrections: list[CorrectionOut] = Field(description="newest first")


def _correction_out(c: CorrectionRecord) -> CorrectionOut:
    return CorrectionOut(
        id=c.id,
        account=c.account,
        chat=c.peer_id,
        kind=c.kind,
        context=c.context,
        twin_text=c.twin_text,
        owner_text=c.owner_text,
        draft=c.draft_id,
        created_at=c.created_at,
    )


@routes.get("/corrections", name="corrections", summary="What the owner made of the drafts")
async def corrections(request: web.Request, query: CorrectionsQuery) -> CorrectionsOut:
    """Every decision on a draft (sent unchanged, edited, skipped) with what the contact wrote,
    newest first. Those with the owner's text become the first examples of later prompts,
    the most similar to the contact's message first."""
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    found = await request.app[keys.DATABASE].repo.corrections(account_id, limit=query.limit)
    return CorrectionsOut(corrections=[_correction_out(c) for c in found])


@routes.delete(
    "/corrections/{correction_id}", name="correction_delete", summary="Forget a correction"
)
async def delete_correction(
    request: web.Request, path: CorrectionPath, query: CorrectionsQuery
) -> None:
    """The correction is no longer used as an example. 404: no such correction of the
    account."""
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    await request.app[keys.DATABASE].repo.delete_correction(account_id, path.correction_id)
    request.app[keys.SERVICES]["pipeline"].generator.forget_corrections(account_id)
