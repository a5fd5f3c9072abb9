"""Control endpoints of the admin frontend: chats and their pause state, behaviour settings.

Settings: `PUT /settings` stores per-account overrides of config.toml's `[twin]`, `[schedule]`
and `[humanize]` (no secrets live in these sections), `PUT /chats/{id}/settings` per-chat ones,
as merge patches one level deep; the use cases (merge, validation as the pipeline reads them,
storage, events) are twin.services.settings', pause/resume twin.services.chats': these views
parse, call and render.

Pausing: `paused_until` far in the future (PAUSED_FOREVER, 9999-12-31T00:00:00Z) means "until
resumed"; the pipeline uses the same sentinel when it escalates a chat to the owner.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, create_model

from twin import keys
from twin.api.fields import PeerId
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName
from twin.config import HumanizeSettings, ScheduleSettings, TwinSettings
from twin.services.policy import OVERRIDABLE
from twin.services.settings import AccountSettings, ChatSettings

routes = RouteTable(tags=("control",))

MAX_PAUSE_MINUTES = 366 * 24 * 60
SECTIONS = tuple(OVERRIDABLE)  # twin, schedule, humanize
_SETTINGS_LOCK = "settings_lock"  # in app[keys.SERVICES]: one read-modify-write at a time
# Domain parsers name the exact key first: "schedule.hours.mon: '25:00-26:00' is not …".
_NAMED_KEY = re.compile(
    r"^(?P<path>[a-z_]+(?:\.[a-z0-9_]+|\[\d+\])+)(?P<sep>:\s*|\s+)(?P<rest>.*)$", re.DOTALL
)


# --- models -------------------------------------------------------------------------------------


class ChatsQuery(ApiModel):
    account: str = AccountName
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class ChatOut(ApiModel):
    id: int = Field(description="Telegram peer id (the `chat_id` of pause/resume)")
    kind: str
    title: str | None
    username: str | None
    is_contact: bool
    is_bot: bool
    paused: bool
    paused_until: datetime | None = Field(
        description="9999-12-31T00:00:00Z means paused until resumed"
    )
    last_incoming_at: datetime | None
    last_outgoing_at: datetime | None
    last_owner_activity_at: datetime | None
    thread_id: str | None = Field(
        description="an HTTP chat conversation's thread id (null for Telegram chats)"
    )


class ChatsOut(ApiModel):
    chats: list[ChatOut] = Field(description="most recent activity first")
    total: int
    limit: int
    offset: int


class ChatPath(ApiModel):
    chat_id: PeerId


class PauseIn(ApiModel):
    minutes: float | None = Field(
        None,
        gt=0,
        le=MAX_PAUSE_MINUTES,
        strict=True,  # a number: neither "5" nor true
        description="how long; null (the default) pauses until resumed",
    )
    account: str = AccountName


class AccountIn(ApiModel):
    account: str = AccountName


class SettingsQuery(ApiModel):
    account: str = AccountName


def _patch_model(section: type[BaseModel]) -> type[ApiModel]:
    """The keys of a config section as an override: each optional, typed and bounded exactly
    as in config.toml; null drops the key's override. Rules that span keys (min <= max, a
    known time zone, valid working hours) are checked when the overrides are merged."""
    fields: dict[str, Any] = {}
    for name, info in section.model_fields.items():
        annotation = info.annotation
        if info.metadata:
            annotation = Annotated[annotation, *info.metadata]
        fields[name] = (annotation | None, Field(None, description=info.description))
    return create_model(
        f"{section.__name__}Patch", __base__=ApiModel, __doc__=_patch_model.__doc__, **fields
    )


TwinPatch = _patch_model(TwinSettings)
SchedulePatch = _patch_model(ScheduleSettings)
HumanizePatch = _patch_model(HumanizeSettings)


class SettingsIn(ApiModel):
    account: str = AccountName
    twin: TwinPatch | None = Field(
        None, description="[twin] keys to override; null for a key (or the section) drops it"
    )
    schedule: SchedulePatch | None = Field(None, description="[schedule] keys to override")
    humanize: HumanizePatch | None = Field(None, description="[humanize] keys to override")

    def patch(self) -> dict[str, dict[str, Any] | None]:
        """The sections given, as plain data: the keys sent (null: drop), or None (drop all)."""
        result: dict[str, dict[str, Any] | None] = {}
        for name in SECTIONS:
            if name not in self.model_fields_set:
                continue
            section: BaseModel | None = getattr(self, name)
            result[name] = (
                None if section is None else section.model_dump(mode="json", exclude_unset=True)
            )
        return result


class EffectiveOut(ApiModel):
    twin: TwinSettings
    schedule: ScheduleSettings
    humanize: HumanizeSettings


class SettingsOut(ApiModel):
    account: str
    effective: EffectiveOut = Field(description="config.toml defaults with the overrides applied")
    overrides: dict[str, dict[str, Any]] = Field(description="what this account changed")


# --- chats --------------------------------------------------------------------------------------


def _chat_out(chat: Any, now: datetime) -> ChatOut:
    return ChatOut(
        id=chat.peer_id,
        kind=chat.kind,
        title=chat.title,
        username=chat.username,
        is_contact=chat.is_contact,
        is_bot=chat.is_bot,
        paused=chat.is_paused(now),
        paused_until=chat.paused_until,
        last_incoming_at=chat.last_incoming_at,
        last_outgoing_at=chat.last_outgoing_at,
        last_owner_activity_at=chat.last_owner_activity_at,
        thread_id=chat.external_id,
    )


@routes.get("/chats", name="chats", summary="Stored chats with their pause state")
async def chats(request: web.Request, query: ChatsQuery) -> ChatsOut:
    """Chats the twin has seen (from the database, not Telegram), most recent activity first."""
    repo = request.app[keys.DATABASE].repo
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    rows = await repo.list_chats(account_id, limit=query.limit, offset=query.offset)
    total = await repo.count_chats(account_id)
    now = request.app[keys.CLOCK].now()
    return ChatsOut(
        chats=[_chat_out(chat, now) for chat in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@routes.post("/chats/{chat_id}/pause", name="chat_pause", summary="Pause the twin in a chat")
async def pause_chat(request: web.Request, path: ChatPath, body: PauseIn) -> ChatOut:
    """Stop replying in this chat for `minutes` (null: until resumed) and cancel the reply it
    was about to send. Pausing again replaces the previous end."""
    paused = await request.app[keys.CHATS].pause(body.account, path.chat_id, body.minutes)
    return _chat_out(paused.chat, request.app[keys.CLOCK].now())


@routes.post("/chats/{chat_id}/resume", name="chat_resume", summary="Resume the twin in a chat")
async def resume_chat(request: web.Request, path: ChatPath, body: AccountIn) -> ChatOut:
    """End a pause (a manual one, or the owner-takeover pause after writing in the chat)."""
    chat = await request.app[keys.CHATS].resume(body.account, path.chat_id)
    return _chat_out(chat, request.app[keys.CLOCK].now())


# --- settings -----------------------------------------------------------------------------------


def _settings_out(result: AccountSettings) -> SettingsOut:
    behaviour = result.behaviour
    return SettingsOut(
        account=result.account,
        effective=EffectiveOut(
            twin=behaviour.twin, schedule=behaviour.schedule, humanize=behaviour.humanize
        ),
        overrides=result.overrides,
    )


@routes.get("/settings", name="settings_get", summary="Effective behaviour settings")
async def get_settings(request: web.Request, query: SettingsQuery) -> SettingsOut:
    """The account's effective [twin], [schedule] and [humanize] settings and its overrides."""
    return _settings_out(await request.app[keys.BEHAVIOUR].get(query.account))


@routes.put("/settings", name="settings_put", summary="Change behaviour settings")
async def put_settings(request: web.Request, body: SettingsIn) -> SettingsOut:
    """Merge these keys into the account's overrides (a key set to null reverts to
    config.toml; a section set to null reverts all its keys). Invalid values: 422 naming each
    field, e.g. `schedule.hours.mon`. Takes effect for the next message."""
    return _settings_out(await request.app[keys.BEHAVIOUR].update(body.account, body.patch()))


@routes.post("/twin/enable", name="twin_enable", summary="Switch the twin on for an account")
async def enable(request: web.Request, body: AccountIn) -> SettingsOut:
    """Sets the `twin.enabled` override to true."""
    patch = {"twin": {"enabled": True}}
    return _settings_out(await request.app[keys.BEHAVIOUR].update(body.account, patch))


@routes.post("/twin/disable", name="twin_disable", summary="Switch the twin off for an account")
async def disable(request: web.Request, body: AccountIn) -> SettingsOut:
    """Sets the `twin.enabled` override to false: no replies in any chat until enabled."""
    patch = {"twin": {"enabled": False}}
    return _settings_out(await request.app[keys.BEHAVIOUR].update(body.account, patch))


# --- per-chat settings ----------------------------------------------------------------------------


class ChatSettingsIn(SettingsIn):
    """The same sections as PUT /settings, applied to one chat on top of the account's."""


class ChatSettingsOut(ApiModel):
    account: str
    chat: int
    effective: EffectiveOut = Field(description="config.toml + account overrides + chat overrides")
    overrides: dict[str, dict[str, Any]] = Field(description="what this chat changed")


def _chat_settings_out(result: ChatSettings) -> ChatSettingsOut:
    behaviour = result.behaviour
    return ChatSettingsOut(
        account=result.account,
        chat=result.chat.peer_id,
        effective=EffectiveOut(
            twin=behaviour.twin, schedule=behaviour.schedule, humanize=behaviour.humanize
        ),
        overrides=result.overrides,
    )


@routes.get("/chats/{chat_id}/settings", name="chat_settings_get", summary="A chat's settings")
async def get_chat_settings(
    request: web.Request, path: ChatPath, query: SettingsQuery
) -> ChatSettingsOut:
    """The effective settings in this chat and what the chat overrides (e.g. voice replies)."""
    return _chat_settings_out(
        await request.app[keys.BEHAVIOUR].get_chat(query.account, path.chat_id)
    )


@routes.put("/chats/{chat_id}/settings", name="chat_settings_put", summary="Override per chat")
async def put_chat_settings(
    request: web.Request, path: ChatPath, body: ChatSettingsIn
) -> ChatSettingsOut:
    """Merge these keys into the chat's overrides (null drops a key or a section), e.g.
    `{"twin": {"voice_replies": "always"}}` or a chat-specific working-hours table."""
    behaviour = request.app[keys.BEHAVIOUR]
    return _chat_settings_out(await behaviour.update_chat(body.account, path.chat_id, body.patch()))
