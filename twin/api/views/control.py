"""Control endpoints of the admin frontend: chats and their pause state, behaviour settings.

Settings: the `[twin]`, `[schedule]` and `[humanize]` sections of config.toml are the defaults;
`PUT /settings` stores per-account overrides of them (no secrets live in these sections). A PUT
is a merge patch, one level deep: a section's keys are merged into the stored overrides, each
key's value replaces the stored one whole (so `schedule.hours` is always the complete weekly
table), `null` for a key drops that override (back to config.toml) and `null` for a section
drops all of its overrides. Every change is validated against the config defaults exactly as the
pipeline will read it (`twin.services.policy`), and stored normalised.

Pausing: `paused_until` far in the future (PAUSED_FOREVER, 9999-12-31T00:00:00Z) means "until
resumed"; the pipeline uses the same sentinel when it escalates a chat to the owner.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, create_model

from twin import keys
from twin.api.errors import ApiError
from twin.api.fields import PeerId
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName
from twin.config import HumanizeSettings, ScheduleSettings, Settings, TwinSettings
from twin.domain.models import PAUSED_FOREVER, SkipReason
from twin.errors import NotFound
from twin.services.policy import OVERRIDABLE, account_policy, behaviour_of, merge_behaviour

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
    )


@routes.get("/chats", name="chats", summary="Stored chats with their pause state")
async def chats(request: web.Request, query: ChatsQuery) -> ChatsOut:
    """Chats the twin has seen (from the database, not Telegram), most recent activity first."""
    repo = request.app[keys.DATABASE].repo
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    rows = await repo.list_chats(account_id, limit=query.limit, offset=query.offset)
    total = await repo.count_chats(account_id)
    now = datetime.now(UTC)
    return ChatsOut(
        chats=[_chat_out(chat, now) for chat in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


async def _set_paused(
    request: web.Request, account: str, peer_id: int, until: datetime | None
) -> tuple[int, Any]:
    account_id = await request.app[keys.DIRECTORY].id_of(account)
    try:
        chat = await request.app[keys.DATABASE].repo.set_paused(account_id, peer_id, until)
    except NotFound:
        raise NotFound(f"chat {peer_id} is unknown to account '{account}'") from None
    return account_id, chat


@routes.post("/chats/{chat_id}/pause", name="chat_pause", summary="Pause the twin in a chat")
async def pause_chat(request: web.Request, path: ChatPath, body: PauseIn) -> ChatOut:
    """Stop replying in this chat for `minutes` (null: until resumed) and cancel the reply it
    was about to send. Pausing again replaces the previous end."""
    now = datetime.now(UTC)
    until = PAUSED_FOREVER if body.minutes is None else now + timedelta(minutes=body.minutes)
    account_id, chat = await _set_paused(request, body.account, path.chat_id, until)
    cancelled = 0
    pipeline = request.app[keys.SERVICES].get("pipeline")
    if pipeline is not None:
        cancelled = await pipeline.cancel_pending(account_id, chat.id, SkipReason.PAUSED.value)
    await request.app[keys.EVENTS].emit(
        "chat.paused",
        {
            "account": body.account,
            "chat": path.chat_id,
            "until": None if body.minutes is None else until.isoformat(),
            "minutes": body.minutes,
            "cancelled": cancelled or 0,
        },
        account_id=account_id,
        chat_id=chat.id,
    )
    return _chat_out(chat, now)


@routes.post("/chats/{chat_id}/resume", name="chat_resume", summary="Resume the twin in a chat")
async def resume_chat(request: web.Request, path: ChatPath, body: AccountIn) -> ChatOut:
    """End a pause (a manual one, or the owner-takeover pause after writing in the chat)."""
    account_id, chat = await _set_paused(request, body.account, path.chat_id, None)
    await request.app[keys.EVENTS].emit(
        "chat.resumed",
        {"account": body.account, "chat": path.chat_id},
        account_id=account_id,
        chat_id=chat.id,
    )
    return _chat_out(chat, datetime.now(UTC))


# --- settings -----------------------------------------------------------------------------------


def merge_patch(
    stored: Mapping[str, Any], patch: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """Stored overrides with `patch` applied (see the module docstring); empty sections go."""
    result = {
        name: dict(section) for name, section in stored.items() if isinstance(section, Mapping)
    }
    for name, changes in patch.items():
        if changes is None:
            result.pop(name, None)
            continue
        section = result.setdefault(name, {})
        for key, value in changes.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
        if not section:
            del result[name]
    return result


def validate_overrides(
    settings: Settings, overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The overrides normalised by the config models (e.g. "5" → 5.0), or ApiError 422 with a
    dotted field path per problem (`schedule.hours.mon`, `twin.takeover_minutes`)."""
    base = behaviour_of(settings)
    problems: list[tuple[str, str]] = []
    normalised: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        patch = overrides.get(name)
        if not patch:
            continue
        try:
            merged = merge_behaviour(base, {name: patch})
        except ValidationError as exc:
            problems.extend(_problems(name, exc))
            continue
        normalised[name] = getattr(merged, name).model_dump(mode="json", include=set(patch))
    if not problems:
        try:  # what the pipeline builds from them; the section models check most of it already
            account_policy(behaviour_of(settings, normalised))
        except ValueError as exc:
            problems.append(_named(str(exc), "settings"))
    if problems:
        raise ApiError(422, "The settings are not valid.", details=problems)
    return normalised


def _section_problems(
    settings: Settings, overrides: Mapping[str, Any], section: str
) -> list[tuple[str, str]]:
    try:
        merge_behaviour(behaviour_of(settings), {section: overrides.get(section)})
    except ValidationError as exc:
        return list(_problems(section, exc))
    return []


def _problems(section: str, exc: ValidationError) -> Iterator[tuple[str, str]]:
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join([section, *(str(part) for part in error["loc"])])
        yield _named(error["msg"].removeprefix("Value error, "), field, section)


def _named(message: str, field: str, section: str | None = None) -> tuple[str, str]:
    """(field, message), preferring the exact key a domain parser named in its message."""
    match = _NAMED_KEY.match(message)
    if match and (section is None or match["path"].startswith(section + ".")):
        path = re.sub(r"\[(\d+)\]", r".\1", match["path"])
        return path, match["rest"] if match["sep"].startswith(":") else message
    return field, message


def _settings_out(account: str, settings: Settings, overrides: Mapping[str, Any]) -> SettingsOut:
    try:
        behaviour = behaviour_of(settings, overrides)
    except ValidationError as exc:  # config.toml changed under stored overrides
        problems = [p for name in SECTIONS for p in _section_problems(settings, overrides, name)]
        raise ApiError(
            409,
            "The stored overrides are not valid with the current config.toml: correct or drop "
            "them with PUT /settings.",
            details=problems or [("settings", str(exc))],
        ) from None
    return SettingsOut(
        account=account,
        effective=EffectiveOut(
            twin=behaviour.twin, schedule=behaviour.schedule, humanize=behaviour.humanize
        ),
        overrides={name: dict(overrides[name]) for name in SECTIONS if overrides.get(name)},
    )


async def _update_settings(
    request: web.Request, account: str, patch: Mapping[str, Mapping[str, Any] | None]
) -> SettingsOut:
    settings = request.app[keys.SETTINGS]
    repo = request.app[keys.DATABASE].repo
    account_id = await request.app[keys.DIRECTORY].id_of(account)
    lock = request.app[keys.SERVICES].setdefault(_SETTINGS_LOCK, asyncio.Lock())
    async with lock:
        stored = await repo.get_settings(account_id)
        overrides = validate_overrides(settings, merge_patch(stored, patch))
        if overrides != stored:
            await repo.put_settings(account_id, overrides)
    changed = _changed_keys(stored, overrides)
    if changed:
        await request.app[keys.EVENTS].emit(
            "settings.changed", {"account": account, "changed": changed}, account_id=account_id
        )
    return _settings_out(account, settings, overrides)


def _changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per section, the keys whose override was added, changed or dropped."""
    changed = {}
    for name in SECTIONS:
        old, new = before.get(name) or {}, after.get(name) or {}
        keys_ = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
        if keys_:
            changed[name] = keys_
    return changed


@routes.get("/settings", name="settings_get", summary="Effective behaviour settings")
async def get_settings(request: web.Request, query: SettingsQuery) -> SettingsOut:
    """The account's effective [twin], [schedule] and [humanize] settings and its overrides."""
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    overrides = await request.app[keys.DATABASE].repo.get_settings(account_id)
    return _settings_out(query.account, request.app[keys.SETTINGS], overrides)


@routes.put("/settings", name="settings_put", summary="Change behaviour settings")
async def put_settings(request: web.Request, body: SettingsIn) -> SettingsOut:
    """Merge these keys into the account's overrides (a key set to null reverts to
    config.toml; a section set to null reverts all its keys). Invalid values: 422 naming each
    field, e.g. `schedule.hours.mon`. Takes effect for the next message."""
    return await _update_settings(request, body.account, body.patch())


@routes.post("/twin/enable", name="twin_enable", summary="Switch the twin on for an account")
async def enable(request: web.Request, body: AccountIn) -> SettingsOut:
    """Sets the `twin.enabled` override to true."""
    return await _update_settings(request, body.account, {"twin": {"enabled": True}})


@routes.post("/twin/disable", name="twin_disable", summary="Switch the twin off for an account")
async def disable(request: web.Request, body: AccountIn) -> SettingsOut:
    """Sets the `twin.enabled` override to false: no replies in any chat until enabled."""
    return await _update_settings(request, body.account, {"twin": {"enabled": False}})


# --- per-chat settings ----------------------------------------------------------------------------


class ChatSettingsIn(SettingsIn):
    """The same sections as PUT /settings, applied to one chat on top of the account's."""


class ChatSettingsOut(ApiModel):
    account: str
    chat: int
    effective: EffectiveOut = Field(description="config.toml + account overrides + chat overrides")
    overrides: dict[str, dict[str, Any]] = Field(description="what this chat changed")


async def _chat_settings_out(
    request: web.Request, account: str, account_id: int, chat: Any
) -> ChatSettingsOut:
    settings = request.app[keys.SETTINGS]
    account_overrides = await request.app[keys.DATABASE].repo.get_settings(account_id)
    try:
        behaviour = behaviour_of(settings, account_overrides, chat.overrides or None)
    except ValidationError as exc:
        raise ApiError(
            409,
            "The stored chat overrides are not valid with the current settings.",
            details=list(_problems("settings", exc)),
        ) from None
    return ChatSettingsOut(
        account=account,
        chat=chat.peer_id,
        effective=EffectiveOut(
            twin=behaviour.twin, schedule=behaviour.schedule, humanize=behaviour.humanize
        ),
        overrides={k: dict(v) for k, v in (chat.overrides or {}).items() if v},
    )


async def _chat_of(request: web.Request, account: str, peer_id: int) -> tuple[int, Any]:
    account_id = await request.app[keys.DIRECTORY].id_of(account)
    try:
        chat = await request.app[keys.DATABASE].repo.get_chat_by_peer(account_id, peer_id)
    except NotFound:
        raise NotFound(f"chat {peer_id} is unknown to account '{account}'") from None
    return account_id, chat


@routes.get("/chats/{chat_id}/settings", name="chat_settings_get", summary="A chat's settings")
async def get_chat_settings(
    request: web.Request, path: ChatPath, query: SettingsQuery
) -> ChatSettingsOut:
    """The effective settings in this chat and what the chat overrides (e.g. voice replies)."""
    account_id, chat = await _chat_of(request, query.account, path.chat_id)
    return await _chat_settings_out(request, query.account, account_id, chat)


@routes.put("/chats/{chat_id}/settings", name="chat_settings_put", summary="Override per chat")
async def put_chat_settings(
    request: web.Request, path: ChatPath, body: ChatSettingsIn
) -> ChatSettingsOut:
    """Merge these keys into the chat's overrides (null drops a key or a section), e.g.
    `{"twin": {"voice_replies": "always"}}` or a chat-specific working-hours table."""
    account_id, chat = await _chat_of(request, body.account, path.chat_id)
    patch = body.patch()
    repo = request.app[keys.DATABASE].repo
    lock = request.app[keys.SERVICES].setdefault(_SETTINGS_LOCK, asyncio.Lock())
    async with lock:
        overrides = validate_overrides(
            request.app[keys.SETTINGS], merge_patch(chat.overrides or {}, patch)
        )
        chat = await repo.update_chat(chat.id, overrides=overrides)
    await request.app[keys.EVENTS].emit(
        "chat.settings_changed",
        {"account": body.account, "chat": path.chat_id, "overrides": overrides},
        account_id=account_id,
        chat_id=chat.id,
    )
    return await _chat_settings_out(request, body.account, account_id, chat)
