"""The owner's learned style profile (built by `twin style build`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.validation import ApiModel, RouteTable
from twin.domain.style import render_style
from twin.errors import NotFound
from twin.services.style import stored_profile

routes = RouteTable(tags=("style",))


class StyleQuery(ApiModel):
    account: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class StyleOut(ApiModel):
    account: str
    message_count: int
    summary: str = Field(description="the profile as the prompt describes it")
    profile: dict[str, Any] = Field(description="the statistics: lengths, rates, languages, …")


@routes.get("/style", name="style", summary="The learned style profile")
async def style(request: web.Request, query: StyleQuery) -> StyleOut:
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    profile = await stored_profile(request.app[keys.DATABASE].repo, account_id)
    if profile is None:
        raise NotFound("no style profile yet: run `twin style build`")
    data = _plain(profile)
    data.pop("examples", None)  # private message texts stay out of the API
    return StyleOut(
        account=query.account,
        message_count=profile.message_count,
        summary=render_style(profile, detail="brief"),
        profile=data,
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
