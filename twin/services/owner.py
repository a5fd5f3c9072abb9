"""Where the owner is told of what needs them: the Saved Messages of a logged-in personal
Telegram account answering as the same twin (an escalation on an HTTP channel or on a bot,
which have no Saved Messages with the owner)."""

from __future__ import annotations

from twin.ports import Accounts, Messenger, Store

__all__ = ["owner_account"]


async def owner_account(
    repo: Store,
    accounts: Accounts | None,
    twin_id: int | None,
    *,
    default: bool,
    named: str = "",
) -> Messenger | None:
    """The first logged-in personal account answering as twin `twin_id` (`default`: the twin
    named default, which accounts with no twin set answer as too), or account `named` when
    one is configured; None when none is logged in here."""
    if named:
        names = [named]
    elif twin_id is None:
        names = [
            r.name
            for r in await repo.list_accounts()
            if r.channel == "telegram" and r.twin_id is None
        ]
    else:
        names = await repo.twin_accounts(twin_id, default=default, channel="telegram")
    for name in names:
        candidate = accounts.loaded(name) if accounts is not None else None
        if candidate is not None and candidate.authorized:
            return candidate
    return None
