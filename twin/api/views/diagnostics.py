"""Diagnostics: `POST /echo` returns its validated body, to check a client against the API."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from twin.api.context import current_request_id
from twin.api.validation import ApiModel, RouteTable

routes = RouteTable(tags=("diagnostics",))


class EchoOptions(ApiModel):
    uppercase: bool = False
    repeat: int = Field(1, ge=1, le=10, description="How many times to repeat the message.")


class EchoIn(ApiModel):
    message: str = Field(min_length=1, max_length=4096)
    tags: list[str] = Field(default_factory=list, max_length=20)
    priority: float | None = Field(None, ge=0, le=1)
    options: EchoOptions = Field(default_factory=EchoOptions)


class EchoOut(ApiModel):
    message: str
    tags: list[str]
    priority: float | None
    request_id: str | None


@routes.post("/echo", name="echo")
async def echo(request: web.Request, body: EchoIn) -> EchoOut:
    """Echo the validated body back (diagnostics: shows how the API validates input)."""
    text = body.message.upper() if body.options.uppercase else body.message
    return EchoOut(
        message=" ".join([text] * body.options.repeat),
        tags=body.tags,
        priority=body.priority,
        request_id=current_request_id(),
    )
