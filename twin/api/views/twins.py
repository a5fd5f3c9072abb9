"""Twins as resources (`/twins`) and which twin an account answers as (`PUT /accounts/{name}`).
The logic is twin.services.twins; these views parse, call, render."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.auth import principal_of
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.control import EffectiveOut, HumanizePatch, SchedulePatch, TwinPatch
from twin.api.views.telegram import AccountName
from twin.errors import NotFound
from twin.services.twins import Twins, TwinView

routes = RouteTable(tags=("twins",))

TwinName = Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", examples=["sales"]
)


class VoiceIn(ApiModel):
    provider: Literal["elevenlabs", "openai"] | None = None
    voice_id: str | None = Field(None, min_length=1, max_length=128)


class TwinBody(ApiModel):
    twin: TwinPatch | None = Field(  # type: ignore[valid-type]
        None,
        description="[twin] keys: owner_name, persona, facts, boundaries, language, "
        "disclose_assistant, greeting, reply policy",
        examples=[{"owner_name": "Olga", "persona": "Runs a flower shop; warm, brief."}],
    )
    schedule: SchedulePatch | None = None  # type: ignore[valid-type]
    humanize: HumanizePatch | None = None  # type: ignore[valid-type]
    voice: VoiceIn = Field(default_factory=VoiceIn)

    def overrides(self) -> dict[str, dict[str, Any]]:
        result = {}
        for name in ("twin", "schedule", "humanize"):
            section = getattr(self, name)
            if section is not None:
                values = section.model_dump(mode="json", exclude_unset=True)
                if values:
                    result[name] = values
        return result


class TwinIn(TwinBody):
    name: str = TwinName


class TwinOut(ApiModel):
    name: str
    overrides: dict[str, dict[str, Any]] = Field(description="what is stored over config.toml")
    voice: dict[str, Any]
    effective: EffectiveOut = Field(description="config.toml with the overrides")
    accounts: list[str] = Field(description="accounts and channels answering as this twin")
    created_at: datetime
    updated_at: datetime


class TwinsOut(ApiModel):
    twins: list[TwinOut]


class TwinPath(ApiModel):
    name: str = TwinName


class AccountPath(ApiModel):
    name: str = AccountName


class LinkIn(ApiModel):
    twin: str = TwinName


class LinkOut(ApiModel):
    account: str
    twin: str


def _twins(request: web.Request) -> Twins:
    twins = request.app.get(keys.TWINS)
    if twins is None:
        raise ApiError(503, "Twins need the database.")
    return twins


def _visible(view: TwinView, request: web.Request) -> bool:
    """A key bound to an account sees only the twin its account answers as (twins are shared
    by accounts: it may not change them, `bound_keys=False`)."""
    principal = principal_of(request)
    return principal is None or principal.account is None or principal.account in view.accounts


def _out(view: TwinView, request: web.Request | None = None) -> TwinOut:
    principal = principal_of(request) if request is not None else None
    accounts = view.accounts
    if principal is not None and principal.account is not None:  # nothing of another account
        accounts = [name for name in accounts if name == principal.account]
    behaviour = view.behaviour
    return TwinOut(
        name=view.record.name,
        overrides=view.record.settings,
        voice=view.record.voice,
        effective=EffectiveOut(
            twin=behaviour.twin, schedule=behaviour.schedule, humanize=behaviour.humanize
        ),
        accounts=accounts,
        created_at=view.record.created_at,
        updated_at=view.record.updated_at,
    )


@routes.get("/twins", name="twins", summary="The twins")
async def list_twins(request: web.Request) -> TwinsOut:
    """Every twin by name, with what is stored over config.toml, the effective values and who
    answers as it."""
    views = await _twins(request).list()
    return TwinsOut(twins=[_out(view, request) for view in views if _visible(view, request)])


@routes.post(
    "/twins", name="twin_create", summary="Create a twin", status=201, bound_keys=False
)
async def create_twin(request: web.Request, body: TwinIn) -> TwinOut:
    """A new twin: its [twin] persona and policy, [schedule] and [humanize] over config.toml
    (validated as the file is: 422 with each problem's field), and its voice. 409: the name
    is taken."""
    view = await _twins(request).create(body.name, body.overrides(), body.voice.model_dump())
    return _out(view)


@routes.get("/twins/{name}", name="twin", summary="One twin")
async def get_twin(request: web.Request, path: TwinPath) -> TwinOut:
    """404: no such twin."""
    view = await _twins(request).get(path.name)
    if not _visible(view, request):
        raise NotFound(f"no twin named '{path.name}'")
    return _out(view, request)


@routes.put(
    "/twins/{name}",
    name="twin_replace",
    summary="Replace a twin's persona and voice",
    bound_keys=False,
)
async def replace_twin(request: web.Request, path: TwinPath, body: TwinBody) -> TwinOut:
    """Replace what is stored for the twin (what the body leaves out falls back to
    config.toml); takes effect for the next reply. 404: no such twin; 422: not valid."""
    view = await _twins(request).replace(path.name, body.overrides(), body.voice.model_dump())
    return _out(view)


@routes.delete(
    "/twins/{name}", name="twin_delete", summary="Delete a twin", status=204, bound_keys=False
)
async def delete_twin(request: web.Request, path: TwinPath) -> None:
    """409 while an account or a channel answers as it, and always for `default`; 404: no such
    twin."""
    await _twins(request).delete(path.name)


@routes.put("/accounts/{name}", name="account_twin", summary="Choose the twin an account is")
async def link_account(request: web.Request, path: AccountPath, body: LinkIn) -> LinkOut:
    """The account answers as `twin` from its next reply. 404: no such account or twin."""
    view = await _twins(request).link(path.name, body.twin)
    return LinkOut(account=path.name, twin=view.record.name)
