"""The Telegram accounts of this process: start, login, sweep, stop.

Accounts are named ("default" when an API call names none); each has one Telethon client and
one database-backed session. Intake hooks are attached here, so the adapter never knows about
storage or the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from twin.adapters.telegram.account import TelegramAccount
from twin.config import Settings
from twin.errors import TelegramUnavailable
from twin.services.intake import Intake

log = logging.getLogger("twin.accounts")

DEFAULT_ACCOUNT = "default"
_RECONNECT_DELAY = 10.0


class RepositorySessionStore:
    """The Telethon session's storage port, on the repository (which keys accounts by id)."""

    def __init__(self, repo: Any) -> None:
        self._repo = repo

    async def _id(self, account: str) -> int:
        return (await self._repo.get_or_create_account(account)).id

    async def load_session(self, account: str) -> bytes | None:
        await self._id(account)
        return await self._repo.load_session(account)

    async def save_session(self, account: str, data: bytes) -> None:
        await self._repo.save_session(account, data)

    async def delete_session(self, account: str) -> None:
        await self._repo.delete_session(account)

    async def load_update_state(self, account: str) -> dict[str, Any] | None:
        return await self._repo.load_update_state(account)

    async def save_update_state(self, account: str, state: dict[str, Any]) -> None:
        await self._repo.save_update_state(account, state)

    async def load_entities(self, account: str) -> list[tuple[Any, ...]]:
        rows = await self._repo.list_entities(await self._id(account))
        return [(r.entity_id, r.access_hash, r.username, r.phone, r.name) for r in rows]

    async def upsert_entities(self, account: str, rows: list[tuple[Any, ...]]) -> None:
        await self._repo.upsert_entities(
            await self._id(account),
            [
                {"entity_id": i, "access_hash": h, "username": u, "phone": p, "name": n}
                for i, h, u, p, n in rows
            ],
        )


class TelegramAccounts:
    def __init__(self, settings: Settings, repo: Any, intake: Intake) -> None:
        self._settings = settings
        self._repo = repo
        self._intake = intake
        self._store = RepositorySessionStore(repo)
        self._accounts: dict[str, TelegramAccount] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        api_hash = settings.telegram.api_hash
        self._api_hash = api_hash.get_secret_value() if api_hash else ""
        self.sweep_done = asyncio.Event()  # set after every sweep (tests wait on it)
        self.on_edited: Any = None
        self.on_deleted: Any = None

    @property
    def configured(self) -> bool:
        return bool(self._settings.telegram.api_id and self._api_hash)

    def _require_configured(self) -> None:
        if not self.configured:
            raise TelegramUnavailable(
                "Telegram is not configured: set telegram.api_id and TWIN_TELEGRAM__API_HASH"
            )

    def _new_account(self, name: str) -> TelegramAccount:
        account = TelegramAccount(
            name, self._settings.telegram, self._store, api_hash=self._api_hash
        )
        account.on_incoming(self._intake.incoming)
        account.on_owner_activity(self._intake.owner_activity)
        if self.on_edited is not None:
            account.on_edited(self.on_edited)
        if self.on_deleted is not None:
            account.on_deleted(self.on_deleted)
        self._accounts[name] = account
        return account

    async def get(self, name: str = DEFAULT_ACCOUNT, *, connect: bool = True) -> TelegramAccount:
        """The named account, created and connected on first use (a login starts this way)."""
        self._require_configured()
        account = self._accounts.get(name) or self._new_account(name)
        if connect:
            # start() is serialised and idempotent: awaiting it also waits for a start that
            # another task began (connected but not yet authorized).
            started = await account.start()
            if started and account.authorized:
                self._spawn(self._sweep_once(account), f"sweep {name}")
        return account

    def known(self) -> list[TelegramAccount]:
        return list(self._accounts.values())

    async def start(self) -> None:
        if not self.configured:
            log.warning(
                "Telegram is not configured (telegram.api_id / TWIN_TELEGRAM__API_HASH): "
                "the API runs, but no account can log in"
            )
            return
        self._spawn(self._start_all(), "start accounts")
        self._spawn(self._sweep_loop(), "sweep loop")

    async def _start_all(self) -> None:
        while True:
            try:
                records = await self._repo.list_accounts()
                break
            except Exception as exc:  # the database may be down at start: retry, don't crash
                log.error("cannot list accounts (%s); retrying in %.0f s", exc, _RECONNECT_DELAY)
                await asyncio.sleep(_RECONNECT_DELAY)
        names = {record.name for record in records} or {DEFAULT_ACCOUNT}
        for name in sorted(names):
            self._spawn(self._connect_forever(name), f"connect {name}")

    async def _connect_forever(self, name: str) -> None:
        while True:
            try:
                await self.get(name)
                return
            except TelegramUnavailable as exc:
                log.warning("account %s: %s; retrying in %.0f s", name, exc, _RECONNECT_DELAY)
                await asyncio.sleep(_RECONNECT_DELAY)

    async def _sweep_once(self, account: TelegramAccount) -> None:
        try:
            await account.sweep(
                lambda chat_id, ids: self._intake.recorded_ids(account.name, chat_id, ids)
            )
        except Exception:
            log.exception("account %s: reconciliation sweep failed", account.name)
        finally:
            self.sweep_done.set()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.telegram.sweep_interval)
            for account in list(self._accounts.values()):
                if account.authorized and account.connected:
                    await self._sweep_once(account)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for account in self._accounts.values():
            with contextlib.suppress(Exception):
                await account.stop()
