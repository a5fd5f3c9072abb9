"""API keys over HTTP, for admin keys not bound to an account (`bound_keys=False`): create
(the key is in the answer, once), list, revoke. The logic is twin.services.keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable
from twin.db.records import ApiKeyRecord
from twin.services.keys import ApiKeys

routes = RouteTable(tags=("keys",))

KeyName = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                examples=["n8n"])
Scope = Literal[
    "admin", "chat", "webhook:talkme", "external", "analytics", "conversation", "messaging"
]


class KeyIn(ApiModel):
    name: str = KeyName
    scopes: list[Scope] = Field(min_length=1, max_length=3, examples=[["chat"]])
    account: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
        description="bind the key to this account: it sees nothing of another (404)",
    )
    twin: str | None = Field(
        None, min_length=1, max_length=64, description="bind a chat key to this twin"
    )


class KeyOut(ApiModel):
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    scopes: list[str]
    account: str | None
    twin: str | None
    created_at: datetime
    last_used_at: datetime | None = Field(description="updated at most once a minute")
    revoked_at: datetime | None


class CreatedOut(KeyOut):
    key: str = Field(description="the key itself: shown this once, never again")


class KeysOut(ApiModel):
    keys: list[KeyOut]


class KeyPath(ApiModel):
    name: str = KeyName


def _out(record: ApiKeyRecord) -> KeyOut:
    return KeyOut(
        name=record.name,
        prefix=record.prefix,
        scopes=record.scopes,
        account=record.account,
        twin=record.twin,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


def _keys(request: web.Request) -> ApiKeys:
    api_keys = request.app.get(keys.API_KEYS)
    if api_keys is None:
        raise ApiError(503, "API keys need the database.")
    return api_keys


@routes.post("/keys", name="key_create", summary="Create an API key", status=201,
             bound_keys=False)
async def create_key(request: web.Request, body: KeyIn) -> CreatedOut:
    """Create a named key with its scopes (`admin`: everything; `chat`: the HTTP chat API;
    `webhook:talkme`: the TalkMe webhook), optionally bound to an account and a twin. The
    answer holds the key itself, this once: only its hash is stored. 409: the name is taken;
    404: no such account."""
    created = await _keys(request).create(
        body.name, body.scopes, account=body.account, twin=body.twin
    )
    return CreatedOut(**_out(created.record).model_dump(), key=created.key)


@routes.get("/keys", name="keys", summary="The API keys (never their secrets)",
            bound_keys=False)
async def list_keys(request: web.Request) -> KeysOut:
    """Every stored key, revoked ones too, oldest first; the configured `[api] tokens` are
    not listed."""
    return KeysOut(keys=[_out(record) for record in await _keys(request).list()])


@routes.delete("/keys/{name}", name="key_revoke", summary="Revoke an API key",
               bound_keys=False)
async def revoke_key(request: web.Request, path: KeyPath) -> KeyOut:
    """Revoke the key: refused at once by this process, by other processes within 15 s. It
    stays listed, revoked. 404: no such key."""
    return _out(await _keys(request).revoke(path.name))
