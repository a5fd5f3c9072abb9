"""Account names ↔ database ids: the one place that resolves a name the API or Telegram gave.

Reading never creates an account. Only a login does (`POST /auth/request_code`, `twin login`,
through `create()`): a typo in `?account=` must answer 404, not leave a row behind that the next
start would connect to Telegram — mass creation of authorization keys from one address is what
gets an account limited. The implicit account of a single-account install, `default`, is the
one exception: it exists as soon as anyone names it, so a fresh install can be configured and
asked for its status before its first login (one row, and it is never connected without a
session).
"""

from __future__ import annotations

from typing import Protocol

from twin.errors import NotFound

DEFAULT_ACCOUNT = "default"
BOT_PREFIX = "bot-"  # a bot's account is named bot-<its Telegram user id> (twin.services.bots)


def is_bot_account(name: str) -> bool:
    return name.startswith(BOT_PREFIX)


class AccountRow(Protocol):
    id: int
    name: str


class AccountStore(Protocol):
    async def get_account(self, name: str) -> AccountRow: ...
    async def get_or_create_account(self, name: str) -> AccountRow: ...
    async def list_accounts(self) -> list[AccountRow]: ...


class AccountDirectory:
    def __init__(self, store: AccountStore) -> None:
        self._store = store
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def _remember(self, row: AccountRow) -> int:
        self._ids[row.name] = row.id
        self._names[row.id] = row.name
        return row.id

    async def id_of(self, name: str) -> int:
        """The id of an existing account; NotFound (404 in the API) for an unknown name."""
        known = self._ids.get(name)
        if known is not None:
            return known
        if name == DEFAULT_ACCOUNT:
            return self._remember(await self._store.get_or_create_account(name))
        try:
            return self._remember(await self._store.get_account(name))
        except NotFound:
            raise NotFound(f"account '{name}' does not exist") from None

    async def create(self, name: str) -> int:
        """The id of `name`, created if missing: for logins only."""
        known = self._ids.get(name)
        if known is not None:
            return known
        return self._remember(await self._store.get_or_create_account(name))

    async def name_of(self, account_id: int) -> str:
        known = self._names.get(account_id)
        if known is None:
            for row in await self._store.list_accounts():
                self._remember(row)
            known = self._names.get(account_id)
            if known is None:
                raise NotFound(f"account {account_id} does not exist")
        return known

    def known_name(self, account_id: int) -> str | None:
        """The name of `account_id` if this process has met it (no database read)."""
        return self._names.get(account_id)

    def remember(self, name: str, account_id: int) -> None:
        """Record a pair learnt elsewhere (e.g. from a message the account received)."""
        self._ids[name] = account_id
        self._names[account_id] = name

    def forget(self, name: str) -> None:
        account_id = self._ids.pop(name, None)
        if account_id is not None:
            self._names.pop(account_id, None)
