"""An account that moves between processes (issue 20) keeps its safety budgets: the process
that begins serving it counts what the previous owner sent, waited and was told, and reads the
mode the previous owner's governor set (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.db.conftest import (  # noqa: F401  (fixtures)
    account,
    backend_url,
    chat,
    db,
    engine_url,
    migrated_url,
    postgres_url,
    repo,
)
from twin.clock import SystemClock
from twin.config import load_settings
from twin.domain.safety import AccountMode
from twin.services.directory import AccountDirectory
from twin.services.safety import GOVERNOR, Safety


def process(repo) -> Safety:  # noqa: F811
    return Safety(load_settings(None), repo, AccountDirectory(repo), SystemClock())


async def test_the_next_owner_counts_what_the_previous_one_did(repo, account, chat) -> None:  # noqa: F811
    a, b = process(repo), process(repo)
    await a.load()
    await b.load()
    before = (await a.ledger_of("default")).snapshot(a.now())  # A served it first
    assert before.sends_last_day == 0 and before.flood_waits_last_day == 0

    # B serves it meanwhile: two sends, a flood wait, and its governor holds it in draft
    for random_id in (1, 2):
        sent = await repo.add_outgoing(account.id, chat.id, text="hi", random_id=random_id)
        await repo.mark_sent(sent.id, 100 + random_id)
    await b.record("default", "flood_wait", category="send", seconds=40.0, detail="SendMessage")
    await b.set_mode("default", AccountMode.DRAFT, reason="PEER_FLOOD", set_by=GOVERNOR)

    stale = (await a.ledger_of("default")).snapshot(a.now())
    assert stale.sends_last_day == 0 and a.mode_of(account.id) is AccountMode.ACTIVE

    await a.adopt("default", account.id)  # the account comes back to A
    after = (await a.ledger_of("default")).snapshot(a.now())
    assert after.sends_last_day == 2
    assert after.flood_waits_last_day == 1 and after.flood_wait_seconds_last_day == 40.0
    assert a.mode_of(account.id) is AccountMode.DRAFT

    await b.set_mode("default", AccountMode.ACTIVE, reason="owner", set_by="owner")
    await a.adopt("default", account.id)
    assert a.mode_of(account.id) is AccountMode.ACTIVE
