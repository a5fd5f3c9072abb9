"""Managing the owner's Telegram accounts: list them with their state, log one out, delete one.

Listing reads only: it never creates an account and never connects one (issue 11.1). Removing
ends the authorization at Telegram (auth.logOut) before the session is forgotten, so no live
authorization is left behind that the owner cannot see; `purge` also deletes the account's
data (chats, messages, replies, settings, style profile, events) with its row, in one
transaction that also records `account.deleted` (the event names the account, so it outlives
the row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from twin.adapters.telegram.mapping import mask_phone
from twin.db.records import AccountRecord
from twin.errors import TelegramUnavailable

if TYPE_CHECKING:
    from twin.adapters.telegram.account import TelegramAccount
    from twin.db.repo import Repository, Transaction
    from twin.services.accounts import TelegramAccounts
    from twin.services.directory import AccountDirectory
    from twin.services.events import EventLog, StagedEvent

# What GET /accounts says about each account:
#   connected      logged in, and the link to Telegram is up
#   connecting     logged in, the link is down (starting, or reconnecting after an outage)
#   awaiting_code  a login was started (code requested) and is not complete
#   offline        logged in (a session is stored) but not served by this process
#                  (Telegram not configured, or beyond [telegram] max_accounts)
#   logged_out     logged out (by the owner, or the authorization was revoked)
#   not_logged_in  created by a login request that never completed
AccountState = Literal[
    "connected", "connecting", "awaiting_code", "offline", "logged_out", "not_logged_in"
]


@dataclass(frozen=True, slots=True)
class AccountInfo:
    name: str
    phone: str | None  # masked
    user_id: int | None
    username: str | None
    status: AccountState
    authorized: bool
    connected: bool
    since: datetime | None  # when the link last came up or went down
    created_at: datetime
    twin: str = "default"  # the twin it answers as


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """An instance of a channel other than a Telegram account (HTTP chat, TalkMe, a bot …)."""

    name: str
    channel: str
    twin: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Removed:
    account: str
    purged: bool
    telegram_logged_out: bool  # False: there was no live authorization to end


def _state(record: AccountRecord, live: TelegramAccount | None) -> AccountState:
    if live is not None:
        if live.authorized:
            return "connected" if live.connected else "connecting"
        if live.logging_in:
            return "awaiting_code"
    if record.has_session and record.status == "authorized":
        return "connecting" if live is not None and live.running else "offline"
    if record.status == "logged_out":
        return "logged_out"
    if record.status == "code_sent":
        return "awaiting_code" if live is not None and live.logging_in else "not_logged_in"
    return "not_logged_in"


class AccountAdmin:
    def __init__(
        self,
        repo: Repository,
        directory: AccountDirectory,
        events: EventLog,
        accounts: TelegramAccounts | None,
    ) -> None:
        self._repo = repo
        self._directory = directory
        self._events = events
        self._accounts = accounts

    async def list(self) -> list[AccountInfo]:
        records = await self._repo.list_accounts()
        twins = {twin.id: twin.name for twin in await self._repo.list_twins()}
        # The other channels' instances (the HTTP chat API) are not Telegram accounts.
        return [
            self._info(record, twins.get(record.twin_id or 0, "default"))
            for record in records
            if record.channel == "telegram"
        ]

    async def channels(self) -> list[ChannelInfo]:
        """The other channels' instances, each with the twin it answers as."""
        records = await self._repo.list_accounts()
        twins = {twin.id: twin.name for twin in await self._repo.list_twins()}
        return [
            ChannelInfo(
                record.name,
                record.channel,
                twins.get(record.twin_id or 0, "default"),
                record.created_at,
            )
            for record in records
            if record.channel != "telegram"
        ]

    def _info(self, record: AccountRecord, twin: str = "default") -> AccountInfo:
        live = self._accounts.loaded(record.name) if self._accounts is not None else None
        state = _state(record, live)
        link = live.link.status() if live is not None else None
        return AccountInfo(
            name=record.name,
            phone=mask_phone(record.phone),
            user_id=record.tg_user_id,
            username=record.username,
            status=state,
            authorized=state in ("connected", "connecting", "offline"),
            connected=state == "connected",
            since=link.since if link is not None else None,
            created_at=record.created_at,
            twin=twin,
        )

    async def remove(self, name: str, *, purge: bool = False) -> Removed:
        """Log `name` out of Telegram and forget its session; with `purge`, delete it and its
        data too. NotFound for an unknown account; TelegramUnavailable when a stored session
        cannot be ended at Telegram (nothing is changed then: retry when it is reachable)."""
        record = await self._repo.get_account(name)  # NotFound: 404
        logged_out = await self._log_out(record)
        if self._accounts is not None:
            await self._accounts.forget(name)
        if purge:
            staged = await self._repo.transaction(lambda tx: self._purge(tx, name), hot=False)
            self._directory.forget(name)
            self._events.publish(staged)
        else:
            if record.has_session:
                await self._repo.delete_session(name)  # if logout() did not already
            await self._events.emit("account.logged_out", {"account": name}, account_id=record.id)
        return Removed(account=name, purged=purge, telegram_logged_out=logged_out)

    def _purge(self, tx: Transaction, name: str) -> StagedEvent:
        tx.delete_account(name)
        return self._events.stage(tx, "account.deleted", {"account": name})

    async def _log_out(self, record: AccountRecord) -> bool:
        if not record.has_session:
            return False  # nothing alive at Telegram (a login in progress is dropped by forget)
        if self._accounts is None or not self._accounts.configured:
            raise TelegramUnavailable(
                f"cannot log account '{record.name}' out: Telegram is not configured here, and "
                "forgetting its session would leave the authorization alive at Telegram"
            )
        account = await self._accounts.get(record.name)  # connects the stored session
        if not account.authorized:
            return False  # the authorization was already revoked (e.g. from another device)
        await account.logout()
        return True
