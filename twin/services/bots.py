"""Telegram bots an owner connects by token (`/bots`): each is an account of the channel
`telegram_bot`, logged in through the same adapter as personal accounts
(`auth.importBotAuthorization`), its session encrypted like theirs, answered by the same
pipeline without the steps a bot cannot take (dialogs, read marks, presence: the adapter
skips them for bots). The token is checked by logging in, then never kept elsewhere, returned
or logged.

Status: connected, connecting, unauthorized (the token was revoked or the bot deleted: its
session no longer works), flood_limited (Telegram asked to wait, until `retry_at`), error (the
last error and its time).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.db.records import AccountRecord
from twin.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RateLimited,
    ServedElsewhere,
    TwinError,
)
from twin.ports import Clock, Store
from twin.services.account_admin import AccountAdmin
from twin.services.accounts import TelegramAccounts
from twin.services.directory import BOT_PREFIX
from twin.services.events import EventLog
from twin.services.settings import BehaviourSettings
from twin.services.twins import Twins

__all__ = ["CHANNEL", "BotAdmin", "BotInfo", "bot_name"]

CHANNEL = "telegram_bot"
PROBE_SECONDS = 3.0  # GET /bots asks Telegram whether each connected bot's session still works
_TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{10,}$")


def bot_name(bot_id: int) -> str:
    """The account name of the bot with Telegram user id `bot_id`."""
    return f"{BOT_PREFIX}{bot_id}"


@dataclass(frozen=True, slots=True)
class BotInfo:
    id: int  # the bot's Telegram user id
    name: str  # its account name (bot-<id>)
    username: str | None
    twin: str
    status: str
    paused: bool
    messages_today: int
    last_error: str | None
    last_error_at: datetime | None
    retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Trouble:
    error: str
    at: datetime
    retry_at: datetime | None = None


class BotAdmin:
    def __init__(
        self,
        repo: Store,
        accounts: TelegramAccounts,
        admin: AccountAdmin,
        twins: Twins,
        behaviour: BehaviourSettings,
        events: EventLog,
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._accounts = accounts
        self._admin = admin
        self._twins = twins
        self._behaviour = behaviour
        self._events = events
        self._clock = clock
        self._troubles: dict[str, _Trouble] = {}

    async def add(self, token: str, twin: str) -> BotInfo:
        match = _TOKEN.match(token)
        if match is None:
            raise InvalidInput("token", "a bot token looks like 123456789:AAE… (from @BotFather)")
        await self._twins.get(twin)  # NotFound: 404
        name = bot_name(int(match.group(1)))
        record = await self._record(name)
        if record is not None and record.status == "authorized" and record.has_session:
            raise Conflict(f"bot {match.group(1)} is connected already")
        await self._repo.channel_instance(name, CHANNEL)
        try:
            account = await self._accounts.for_login(name)
            await account.login_bot(token)
        except RateLimited as exc:
            # Kept, with the wait in its status; its client goes (Telethon would refuse the
            # same request locally until the wait ends, even when asked again later).
            self._trouble(name, exc, exc.retry_after)
            await self._accounts.forget(name)
            raise
        except ServedElsewhere:
            raise  # another process's bot (asked there): nothing of it is ours to remove
        except TwinError:
            await self._admin.remove(name, purge=True)  # nothing half-connected stays
            raise
        self._troubles.pop(name, None)
        await self._twins.link(name, twin)
        await self._events.emit("bot.added", {"bot": name, "twin": twin})
        return await self.get(int(match.group(1)))

    async def list(self) -> list[BotInfo]:
        records = [r for r in await self._repo.list_accounts() if r.channel == CHANNEL]
        return [await self._info(record) for record in records]

    async def get(self, bot_id: int) -> BotInfo:
        record = await self._record(bot_name(bot_id))
        if record is None:
            raise NotFound(f"no bot {bot_id}")
        return await self._info(record)

    async def remove(self, bot_id: int) -> None:
        """Log the bot out at Telegram and forget it with its conversations."""
        await self.get(bot_id)  # NotFound: 404
        await self._admin.remove(bot_name(bot_id), purge=True)
        self._troubles.pop(bot_name(bot_id), None)

    async def pause(self, bot_id: int, paused: bool) -> BotInfo:
        """Stop (or start again) answering on this bot; messages are still stored."""
        await self.get(bot_id)
        await self._behaviour.update(bot_name(bot_id), {"twin": {"enabled": not paused}})
        return await self.get(bot_id)

    async def draft_bot(self, account_id: int) -> tuple[int, str] | None:
        """The bot that shows the owner of this account the twin's drafts
        (twin.services.draft_notes): the first of the same twin's bots that is connected
        (here, or served by another process of the cluster, which then sends the notes) and
        not paused; None when there is none."""
        records = await self._repo.list_accounts()
        mine = next((r for r in records if r.id == account_id), None)
        if mine is None or mine.channel == CHANNEL:
            return None
        twin = await self._twins.twin_of(mine.twin_id)
        for record in sorted(records, key=lambda r: r.id):
            if record.channel != CHANNEL or await self._twins.twin_of(record.twin_id) != twin:
                continue
            live = self._accounts.loaded(record.name)
            if live is not None and live.authorized and live.connected:
                pass
            elif not (record.has_session and await self._accounts.served_elsewhere(record.name)):
                continue  # not connected here, nor served by another process
            if ((await self._repo.get_settings(record.id)).get("twin") or {}).get(
                "enabled"
            ) is False:
                continue  # paused
            return record.id, record.name
        return None

    # -- status ----------------------------------------------------------------------------------
    async def _record(self, name: str) -> AccountRecord | None:
        try:
            return await self._repo.get_account(name)
        except NotFound:
            return None

    def _trouble(self, name: str, exc: Exception, retry_after: float | None = None) -> None:
        now = self._clock.now()
        retry_at = now + timedelta(seconds=retry_after) if retry_after else None
        self._troubles[name] = _Trouble(f"{type(exc).__name__}: {exc}", now, retry_at)

    async def _info(self, record: AccountRecord) -> BotInfo:
        live = self._accounts.loaded(record.name)
        trouble = self._troubles.get(record.name)
        now = self._clock.now()
        if trouble is not None and trouble.retry_at is not None and trouble.retry_at > now:
            status = "flood_limited"
        elif live is not None and live.authorized and live.connected:
            status = "connected"
            revoked = False
            with contextlib.suppress(TimeoutError):
                revoked = not await asyncio.wait_for(live.still_authorized(), PROBE_SECONDS)
            if revoked:
                status = "unauthorized"
                trouble = _Trouble(
                    "Telegram no longer accepts this bot's session (token revoked or bot "
                    "deleted): connect it again with its new token",
                    now,
                )
                self._troubles[record.name] = trouble
        elif live is not None and live.authorized:
            status = "connecting"
        elif live is not None and live.running and record.status != "authorized":
            status = "unauthorized"  # connected, but its authorization is gone (revoked)
        elif record.status == "authorized" and record.has_session:
            status = "connecting" if live is not None and live.running else "unauthorized"
        elif trouble is not None:
            status = "error"
        else:
            status = "unauthorized"
        overrides = await self._repo.get_settings(record.id)
        paused = (overrides.get("twin") or {}).get("enabled") is False
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        twin = await self._twins.twin_of(record.twin_id)
        return BotInfo(
            id=record.tg_user_id or int(record.name.removeprefix(BOT_PREFIX)),
            name=record.name,
            username=record.username,
            twin=twin,
            status=status,
            paused=paused,
            messages_today=await self._repo.count_incoming(record.id, since=midnight),
            last_error=trouble.error if trouble else None,
            last_error_at=trouble.at if trouble else None,
            retry_at=trouble.retry_at if trouble else None,
        )
