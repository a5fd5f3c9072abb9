"""What each twin remembers of its contacts (`/contacts/{id}/memory`) and the promises it made
them (`/followups`). The facts come from twin.services.memory; the owner reads, corrects and
clears them here."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable
from twin.db.records_knowledge import ContactRecord, FactRecord

routes = RouteTable(tags=("memory",))

FactKind = Literal["fact", "preference", "date", "promise", "followup"]
ContactId = Field(ge=1, le=2**63 - 1)


class TwinQuery(ApiModel):
    twin: str | None = Field(None, min_length=1, max_length=64, description="only this twin's")


class ContactPath(ApiModel):
    contact_id: int = ContactId


class FollowupPath(ApiModel):
    followup_id: int = ContactId


class ContactOut(ApiModel):
    id: int
    twin: str
    telegram_user_id: int | None = Field(description="how Telegram and the API recognise them")
    phone: str | None = Field(description="how calls and other channels recognise them")
    name: str | None
    created_at: datetime


class ContactsOut(ApiModel):
    contacts: list[ContactOut]


class FactOut(ApiModel):
    id: int
    kind: FactKind
    text: str
    chat_id: int | None = Field(description="the stored conversation it was learnt in")
    message_id: int | None = Field(description="the stored message it came from")
    done_at: datetime | None = Field(description="a followup closed by the owner")
    created_at: datetime


class MemoryOut(ApiModel):
    contact: ContactOut
    facts: list[FactOut]


class FactIn(ApiModel):
    kind: FactKind = "fact"
    text: str = Field(min_length=1, max_length=300, pattern=r"\S")  # not only white space


class MemoryIn(ApiModel):
    facts: list[FactIn] = Field(max_length=500)


class FollowupOut(ApiModel):
    id: int
    text: str
    contact: ContactOut
    chat_id: int | None
    message_id: int | None
    created_at: datetime


class FollowupsOut(ApiModel):
    followups: list[FollowupOut]


async def _names(request: web.Request) -> dict[int, str]:
    repo = request.app[keys.DATABASE].repo
    return {twin.id: twin.name for twin in await repo.list_twins()}


async def _twin_id(request: web.Request, name: str | None) -> int | None:
    if name is None:
        return None
    return (await request.app[keys.DATABASE].repo.get_twin(name)).id


def _contact(record: ContactRecord, names: dict[int, str]) -> ContactOut:
    return ContactOut(
        id=record.id,
        twin=names.get(record.twin_id, ""),
        telegram_user_id=record.telegram_user_id,
        phone=record.phone,
        name=record.name,
        created_at=record.created_at,
    )


def _fact(record: FactRecord) -> FactOut:
    return FactOut.model_validate(record, from_attributes=True)


@routes.get("/contacts", name="contacts", summary="The people the twins remember", bound_keys=False)
async def list_contacts(request: web.Request, query: TwinQuery) -> ContactsOut:
    """Everyone a twin has remembered something of, with how channels recognise them."""
    repo = request.app[keys.DATABASE].repo
    contacts = await repo.list_contacts(await _twin_id(request, query.twin))
    names = await _names(request)
    return ContactsOut(contacts=[_contact(c, names) for c in contacts])


@routes.get(
    "/contacts/{contact_id}/memory",
    name="contact_memory",
    summary="What the twin remembers of a contact",
    bound_keys=False,
)
async def get_memory(request: web.Request, path: ContactPath) -> MemoryOut:
    """Their facts, oldest first, each with the message it came from. 404: no such contact."""
    contact, facts = await request.app[keys.DATABASE].repo.contact_memory(path.contact_id)
    return MemoryOut(
        contact=_contact(contact, await _names(request)), facts=[_fact(f) for f in facts]
    )


@routes.put(
    "/contacts/{contact_id}/memory",
    name="contact_memory_replace",
    summary="Correct what the twin remembers of a contact",
    bound_keys=False,
)
async def replace_memory(request: web.Request, path: ContactPath, body: MemoryIn) -> MemoryOut:
    """The contact's facts become `facts`: a fact kept as it was keeps its source message; the
    next reply uses the new list."""
    repo = request.app[keys.DATABASE].repo
    contact, facts = await repo.replace_contact_memory(
        path.contact_id, [(fact.kind, " ".join(fact.text.split())) for fact in body.facts]
    )
    return MemoryOut(
        contact=_contact(contact, await _names(request)), facts=[_fact(f) for f in facts]
    )


@routes.delete(
    "/contacts/{contact_id}/memory",
    name="contact_memory_clear",
    summary="Forget what the twin remembers of a contact",
    status=204,
    bound_keys=False,
)
async def clear_memory(request: web.Request, path: ContactPath) -> None:
    """Every fact and promise of the contact is deleted. 404: no such contact."""
    await request.app[keys.DATABASE].repo.replace_contact_memory(path.contact_id, [])


@routes.get("/followups", name="followups", summary="Promises the twin made", bound_keys=False)
async def list_followups(request: web.Request, query: TwinQuery) -> FollowupsOut:
    """What the twin told contacts it (the owner) would do ("I'll send it tomorrow"), still
    open, oldest first: the owner's to-do list."""
    repo = request.app[keys.DATABASE].repo
    rows = await repo.followups(await _twin_id(request, query.twin))
    names = await _names(request)
    return FollowupsOut(
        followups=[
            FollowupOut(
                id=fact.id,
                text=fact.text,
                contact=_contact(contact, names),
                chat_id=fact.chat_id,
                message_id=fact.message_id,
                created_at=fact.created_at,
            )
            for fact, contact in rows
        ]
    )


@routes.post(
    "/followups/{followup_id}/done",
    name="followup_done",
    summary="Close a promise",
    status=204,
    bound_keys=False,
)
async def close_followup(request: web.Request, path: FollowupPath) -> None:
    """The promise is kept: it leaves the list and the prompt. 404: no such open promise."""
    await request.app[keys.DATABASE].repo.close_followup(path.followup_id)
