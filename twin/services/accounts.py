"""The Telegram accounts of this process: start, login, sweep, stop.

Accounts are named ("default" when an API call names none); each has one Telethon client and
one database-backed session. Intake hooks are attached here, so the adapter never knows about
storage or the pipeline.

Every connection to Telegram creates or uses an authorization key, so this process opens one
only when the owner asked for it: for the accounts that are logged in (`default` first, at most
`[cluster] max_accounts`), and on a login request. Naming an unknown account anywhere else is a
404 (NotFound), never a new account.

Several processes may share one PostgreSQL: an account is connected only by the process that
owns it (`ownership`, twin.db.cluster). Every `[cluster] claim_seconds` this process looks for
logged-in accounts no process serves and claims them up to its limit; an account another
process serves is a 409 here; when ownership is lost (the database connection holding it
failed) every account is stopped at once, before another process can take them over.

Without an intake (the CLI's `twin login` / `twin style build`) accounts connect without taking
in updates: Telegram is asked not to push any, and the stored update state is left where
`twin run` left it, so the daemon catches up on everything that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from twin.adapters.telegram.account import TelegramAccount, TelegramUser
from twin.clock import Clock, SystemClock
from twin.config import Settings
from twin.domain.backoff import Backoff
from twin.errors import Conflict, NotFound, RateLimited, ServedElsewhere, TelegramUnavailable
from twin.services.directory import DEFAULT_ACCOUNT, AccountDirectory
from twin.services.intake import Intake
from twin.services.safety import Safety

log = logging.getLogger("twin.accounts")

__all__ = ["DEFAULT_ACCOUNT", "RepositorySessionStore", "TelegramAccounts"]

FENCE_SECONDS = 3.0  # each account's stop when ownership is lost


class RepositorySessionStore:
    """The Telethon session's storage port, on the repository (which keys accounts by id)."""

    def __init__(self, repo: Any, directory: AccountDirectory) -> None:
        self._repo = repo
        self._directory = directory

    async def load_session(self, account: str) -> bytes | None:
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
        rows = await self._repo.list_entities(await self._directory.id_of(account))
        return [(r.entity_id, r.access_hash, r.username, r.phone, r.name) for r in rows]

    async def upsert_entities(self, account: str, rows: list[tuple[Any, ...]]) -> None:
        await self._repo.upsert_entities(
            await self._directory.id_of(account),
            [
                {"entity_id": i, "access_hash": h, "username": u, "phone": p, "name": n}
                for i, h, u, p, n in rows
            ],
        )


class TelegramAccounts:
    def __init__(
        self,
        settings: Settings,
        repo: Any,
        directory: AccountDirectory,
        intake: Intake | None = None,
        clock: Clock | None = None,
        safety: Safety | None = None,
        ownership: Any = None,
    ) -> None:
        from twin.db.cluster import SoleOwnership

        self._settings = settings
        self.ownership = ownership or SoleOwnership()
        self._clock: Clock = clock or SystemClock()
        # Every account's calls pass its safety governor; a command outside the daemon (style
        # build) waits for its turn however long instead of being refused.
        self.safety = safety or Safety(
            settings, repo, directory, self._clock, patient=intake is None
        )
        self.safety.accounts = self
        self._repo = repo
        self._directory = directory
        self._intake = intake
        self._store = RepositorySessionStore(repo, directory)
        self._accounts: dict[str, TelegramAccount] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        api_hash = settings.telegram.api_hash
        self._api_hash = api_hash.get_secret_value() if api_hash else ""
        self.sweep_done = asyncio.Event()  # set after every sweep (tests wait on it)
        self._supervised: set[str] = set()
        self._served: set[str] = set()  # the accounts this process claimed and serves
        telegram = settings.telegram
        self._backoff = Backoff(telegram.reconnect_backoff_base, telegram.reconnect_backoff_max)
        self._rng = random.Random()
        self.on_edited: Any = None
        self.on_owner_edited: Any = None  # the owner edited a message on another device
        self.on_deleted: Any = None
        self.on_owner_read: Any = None  # the owner read a chat on another device
        self.on_owner_presence: Any = None  # the owner's own online status
        self.on_owner_command: Any = None  # the owner's text from another device: a command?
        self.on_button: Any = None  # a bot's button pressed: a draft's Send / Edit / Skip?

    @property
    def configured(self) -> bool:
        return bool(self._settings.telegram.api_id and self._api_hash)

    @property
    def receives_updates(self) -> bool:
        return self._intake is not None

    def _require_configured(self) -> None:
        if not self.configured:
            raise TelegramUnavailable(
                "Telegram is not configured: set telegram.api_id and TWIN_TELEGRAM__API_HASH"
            )

    def _new_account(self, name: str) -> TelegramAccount:
        account = TelegramAccount(
            name,
            self._settings.telegram,
            self._store,
            api_hash=self._api_hash,
            receive_updates=self.receives_updates,
            clock=self._clock.now,
        )
        account.on_authorized(self._remember_login)
        account.guard_with(self.safety.guard(name))
        if self._intake is not None:
            account.on_incoming(self._intake.incoming)
            account.on_owner_activity(self._intake.owner_activity)
            if self.on_edited is not None:
                account.on_edited(self.on_edited)
            if self.on_deleted is not None:
                account.on_deleted(self.on_deleted)
            if self.on_owner_edited is not None:
                account.on_owner_edited(self.on_owner_edited)
            if self.on_owner_read is not None:
                account.on_owner_read(self.on_owner_read)
            if self.on_owner_presence is not None:
                account.on_owner_presence(self.on_owner_presence)
            if self.on_owner_command is not None:
                account.on_owner_command(self.on_owner_command)
            if self.on_button is not None:
                account.on_button(self.on_button)
        self._accounts[name] = account
        return account

    async def _remember_login(self, name: str, user: TelegramUser) -> None:
        """Record who the account is logged in as, before its session is flushed: start-up
        connects the accounts recorded as authorized, so none with a session is left out.
        From now on its connection is supervised."""
        account = self._accounts.get(name)
        if account is not None:
            self._supervise(account)
        await self._repo.update_account(
            name,
            status="authorized",
            tg_user_id=user.id,
            username=user.username,
            first_name=user.name,
            phone=user.phone,
        )

    async def _open(self, name: str) -> TelegramAccount:
        """The account object of an existing account (NotFound for an unknown name)."""
        account = self._accounts.get(name)
        if account is None:
            await self._directory.id_of(name)  # NotFound: reading never creates an account
            self._check_capacity(name)
            account = self._accounts.get(name) or self._new_account(name)
        return account

    def _check_capacity(self, name: str) -> None:
        limit = self._settings.cluster.max_accounts
        if name not in self._served and len(self._served) >= limit:
            raise ServedElsewhere(  # forwarded to the process serving it, if one does
                name,
                f"this process already serves {limit} Telegram accounts ([cluster] max_accounts)",
            )

    async def get(self, name: str = DEFAULT_ACCOUNT, *, connect: bool = True) -> TelegramAccount:
        """An existing account; with `connect`, connected when it holds a session (or a login
        is under way). An account that never logged in is not connected: a connection would
        create an authorization key the owner did not ask for. Callers that need it logged in
        get Unauthorized from `require_authorized()`."""
        self._require_configured()
        account = await self._open(name)
        if connect and account.running and account.starting:
            # Connected by a start still under way (start-up, a reconnect): wait for it, or a
            # caller would find the account "not logged in" before it learned it is.
            await account.start()
            return account
        wanted = connect and not account.running
        if wanted and account.logging_in:
            await self._connect(account)
        elif wanted and await self._has_session(name):
            account.expect_link()
            await self._connect(account)
        return account

    async def for_login(self, name: str = DEFAULT_ACCOUNT) -> TelegramAccount:
        """The account to log in (created if missing: only logins create accounts), connected."""
        self._require_configured()
        if name not in self._accounts:
            self._check_capacity(name)
            await self._directory.create(name)
        account = await self._open(name)
        await self._connect(account)
        return account

    async def _has_session(self, name: str) -> bool:
        record = await self._repo.get_account(name)
        return bool(record.has_session)

    async def _connect(self, account: TelegramAccount) -> None:
        await self._own(account.name)
        # start() is serialised and idempotent: awaiting it also waits for a start that
        # another task began (connected but not yet authorized).
        started = await account.start()
        if started and account.authorized and self._intake is not None:
            self._spawn(self._sweep_once(account), f"sweep {account.name}")

    async def _own(self, name: str) -> None:
        """Claim the account for this process, or ServedElsewhere: another process serves it (one
        MTProto session is never used from two processes)."""
        if not await self._claim(name, await self._directory.id_of(name)):
            idle = self._accounts.get(name)
            if idle is not None and not idle.running:
                self._accounts.pop(name)  # not kept: it would count as served here
            raise ServedElsewhere(
                name,
                f"account '{name}' is served by another twin process (GET /cluster); ask that "
                "one, or stop it and this process takes the account over",
            )

    async def _claim(self, name: str, account_id: int) -> bool:
        """Serve the account here if no other process does; a claim newly won voids the
        leases of its jobs (whoever leased them served it before, and is gone or stopped)."""
        newly = not self.ownership.owns(account_id)
        if not await self.ownership.claim(account_id):
            return False
        # Served from here on; a concurrent claim of the same account (the loop and an API
        # connect) finds it served and does not take it over a second time.
        taken_over = newly and self.ownership.shared and name not in self._served
        self._served.add(name)
        self.ownership.serving(sorted(self._served))
        if taken_over:
            with contextlib.suppress(Exception):
                await self._repo.release_leases(account_id=account_id)
            await self.safety.adopt(name, account_id)  # what the previous owner counted
        return True

    async def require_here(self, name: str) -> None:
        """ServedElsewhere when another live process serves `name`: its live state (the
        connection, the safety governor's ledger and mode) is held there. An account no
        process serves may be read and changed from any."""
        owner = await self.served_elsewhere(name)
        if owner is not None:
            raise ServedElsewhere(
                name, f"account '{name}' is served by another twin process (GET /cluster)", owner
            )

    async def served_elsewhere(self, name: str) -> tuple[str, str | None] | None:
        """The other live process of the cluster that serves `name` — its id and API address
        — or None (NotFound: unknown)."""
        ownership = self.ownership
        if not ownership.shared or ownership.owns(await self._directory.id_of(name)):
            return None
        seconds = self._settings.cluster.dead_after_seconds
        return await self._repo.serving(name, ownership.process_id, seconds)

    def mine(self) -> frozenset[int] | None:
        """The Telegram accounts and bots this process serves: with other processes on the
        database, only their reply jobs (and other channels') run here; None: every job."""
        return self.ownership.owned() if self.ownership.shared else None

    async def fence(self) -> None:
        """Ownership is lost: stop every account now, all at once and each within a few
        seconds (a stop that would wait for an unreachable database is cut short: what it
        would have saved is saved again by the next owner's catch-up)."""
        accounts, self._accounts = list(self._accounts.values()), {}
        self._served.clear()
        self.ownership.serving([])

        async def stop(account: TelegramAccount) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(account.close(), FENCE_SECONDS)

        await asyncio.gather(*(stop(account) for account in accounts))
        if accounts:
            log.warning("stopped %d account(s) this process may no longer serve", len(accounts))

    def _supervise(self, account: TelegramAccount) -> None:
        if self._intake is not None and account.name not in self._supervised:
            self._supervised.add(account.name)
            self._spawn(self._supervisor(account), f"supervise {account.name}")

    async def _supervisor(self, account: TelegramAccount) -> None:
        """Start a new client whenever Telethon gives up on the account's connection (finite
        `connection_retries`, a transport error it does not retry) while it is logged in, so
        the daemon never stays deaf until something happens to use the account."""
        try:
            while True:
                reason = await account.wait_stopped()
                if not account.authorized:
                    return  # logged out (or never was): nothing to keep connected
                if self._accounts.get(account.name) is not account:
                    return  # forgotten, or fenced: another process may serve it now
                if not account.running:
                    log.warning(
                        "account %s: the Telegram client stopped (%s); starting a new one",
                        account.name,
                        reason or "disconnected",
                    )
                    await self._connect_with_backoff(account)
        finally:
            self._supervised.discard(account.name)

    async def _connect_with_backoff(self, account: TelegramAccount) -> None:
        delay: float | None = None
        while True:
            if self._accounts.get(account.name) is not account or account.name not in self._served:
                return  # fenced or forgotten meanwhile: another process may serve it now
            try:
                await account.start()
                return
            except TelegramUnavailable as exc:
                delay = self._backoff.next_delay(delay, self._rng)
                log.info("account %s: %s; next try in %.1f s", account.name, exc, delay)
                await asyncio.sleep(delay)

    def known(self) -> list[TelegramAccount]:
        return list(self._accounts.values())

    def loaded(self, name: str) -> TelegramAccount | None:
        """The account's object if this process has opened it (no database read)."""
        return self._accounts.get(name)

    async def forget(self, name: str) -> None:
        """Stop serving an account that was logged out or deleted: its client is stopped and
        nothing starts it again (its supervisor ends with the login it watched)."""
        account = self._accounts.pop(name, None)
        if account is not None:
            with contextlib.suppress(Exception):
                await account.close()
        self._served.discard(name)
        self.ownership.serving(sorted(self._served))
        with contextlib.suppress(NotFound):
            await self.ownership.release(await self._directory.id_of(name))

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
        """Serve the logged-in accounts no process serves, up to `[cluster] max_accounts`
        (`default` first, then by age), now and every `[cluster] claim_seconds`: an account
        logged in elsewhere, or one another process stopped serving, is picked up here."""
        cluster = self._settings.cluster
        warned = failing = False
        while True:
            try:
                records = await self._repo.list_accounts()
            except Exception as exc:  # the database may be down: retry, don't crash
                if not failing:
                    log.error("cannot list accounts (%s); retrying", exc)
                failing = True
                await asyncio.sleep(max(cluster.claim_seconds, 1.0))
                continue
            if failing:
                log.info("accounts listed again")
                failing = False
            logged_in = sorted(
                (r for r in records if r.has_session and r.status == "authorized"),
                key=lambda r: (r.name != DEFAULT_ACCOUNT, r.id),
            )
            for record in logged_in:
                if record.name in self._accounts and self.ownership.owns(record.id):
                    continue  # served here (an object only read for its status is not)
                if len(self.ownership.owned()) >= cluster.max_accounts:
                    if not warned:
                        log.warning(
                            "%d accounts are logged in but this process serves at most %d "
                            "([cluster] max_accounts): not starting %s here",
                            len(logged_in),
                            cluster.max_accounts,
                            ", ".join(r.name for r in logged_in[cluster.max_accounts :]),
                        )
                        warned = True
                    break
                self._directory.remember(record.name, record.id)
                if not await self._claim(record.name, record.id):
                    continue  # another process serves it
                if record.name not in self._accounts:
                    self._new_account(record.name)
                self._spawn(self._connect_forever(record.name), f"connect {record.name}")
            await asyncio.sleep(cluster.claim_seconds)

    async def _connect_forever(self, name: str) -> None:
        delay: float | None = None
        while True:
            try:
                account = await self._open(name)
                account.expect_link()
                await self._connect(account)
                return
            except TelegramUnavailable as exc:
                delay = self._backoff.next_delay(delay, self._rng)
                log.warning("account %s: %s; retrying in %.1f s", name, exc, delay)
                await asyncio.sleep(delay)
            except (NotFound, Conflict):
                return  # removed meanwhile, or another process serves it

    async def _sweep_once(self, account: TelegramAccount) -> None:
        intake = self._intake
        if intake is None:
            return
        try:
            await account.sweep(
                lambda chat_id, ids: intake.recorded_ids(account.name, chat_id, ids)
            )
        except RateLimited as exc:  # the safety governor or Telegram: the next round goes on
            log.info("account %s: sweep postponed: %s", account.name, exc)
        except Exception:
            log.exception("account %s: reconciliation sweep failed", account.name)
        finally:
            self.sweep_done.set()

    async def _sweep_loop(self) -> None:
        if self._intake is None:
            return
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
        for account in list(self._accounts.values()):
            with contextlib.suppress(Exception):
                await account.stop()
        self._served.clear()
        for account_id in self.ownership.owned():  # another process may take them now
            await self.ownership.release(account_id)
        self.ownership.serving([])
