"""Issue 11.1: reading never creates an account, and start-up connects only accounts that are
logged in (`default` first, at most `[cluster] max_accounts`).

Before the fix any request naming an unknown account created it, and every start connected
each one to Telegram: one new authorization key per typo.
"""

from __future__ import annotations

import logging

import pytest

from tests.e2e.conftest import login, people
from twin import keys

UNKNOWN = "typo1"
PHONE = "+15550100"

READS_AND_WRITES = [
    ("GET", f"/stats?account={UNKNOWN}", None),
    ("GET", f"/chats?account={UNKNOWN}", None),
    ("GET", f"/settings?account={UNKNOWN}", None),
    ("GET", f"/messages?chat=1&account={UNKNOWN}", None),
    ("GET", f"/style?account={UNKNOWN}", None),
    ("GET", f"/auth/status?account={UNKNOWN}", None),
    ("GET", f"/dialogs?account={UNKNOWN}", None),
    ("GET", f"/chats/1/settings?account={UNKNOWN}", None),
    ("POST", "/get_dialogs", {"account": UNKNOWN}),
    ("POST", "/send_message", {"chat": 1, "text": "hi", "account": UNKNOWN}),
    ("PUT", "/settings", {"account": UNKNOWN, "twin": {"persona": "x"}}),
    ("PUT", "/chats/1/settings", {"account": UNKNOWN, "twin": {"persona": "x"}}),
    ("POST", "/chats/1/pause", {"account": UNKNOWN}),
    ("POST", "/chats/1/resume", {"account": UNKNOWN}),
    ("POST", "/twin/enable", {"account": UNKNOWN}),
    ("POST", "/twin/disable", {"account": UNKNOWN}),
    ("POST", "/auth/verify_code", {"phone": PHONE, "code": "12345", "account": UNKNOWN}),
    ("POST", "/auth/password", {"password": "secret", "account": UNKNOWN}),
    ("POST", "/auth/logout", {"account": UNKNOWN}),
]


@pytest.mark.parametrize(("method", "path", "body"), READS_AND_WRITES)
async def test_an_unknown_account_is_404_and_is_not_created(
    sandbox, make_daemon, method, path, body
):
    people(sandbox)
    daemon = await make_daemon()
    await login(daemon, sandbox)
    keys_before = len(sandbox.world.auths)

    status, answer = await daemon.call(method, path, json=body)

    assert status == 404, answer
    assert answer["error"]["type"] == "not_found"
    assert UNKNOWN in answer["error"]["message"]
    repo = daemon.app[keys.DATABASE].repo
    assert [a.name for a in await repo.list_accounts()] == ["default"]
    assert len(sandbox.world.auths) == keys_before  # no authorization key was made for it


async def test_only_a_login_creates_an_account(sandbox, make_daemon):
    people(sandbox)
    daemon = await make_daemon()
    status, _ = await daemon.call(
        "POST", "/auth/request_code", json={"phone": PHONE, "account": "work"}
    )
    assert status == 200
    repo = daemon.app[keys.DATABASE].repo
    assert "work" in [a.name for a in await repo.list_accounts()]
    status, _ = await daemon.call("GET", "/auth/status?account=work")
    assert status == 200


async def test_start_connects_only_logged_in_accounts_default_first_within_the_cap(
    sandbox, make_daemon, caplog
):
    people(sandbox)
    sandbox.create_user("15550300", "Sam", "Second")
    daemon = await make_daemon(cluster={"max_accounts": 2})
    await login(daemon, sandbox)
    status, _ = await daemon.call(
        "POST", "/auth/request_code", json={"phone": "+15550300", "account": "second"}
    )
    assert status == 200
    status, _ = await daemon.call(
        "POST",
        "/auth/verify_code",
        json={"phone": "+15550300", "code": sandbox.last_code("15550300"), "account": "second"},
    )
    assert status == 200
    repo = daemon.app[keys.DATABASE].repo
    for index in range(5):  # what reads left behind before the fix
        await repo.get_or_create_account(f"phantom{index}")
    await daemon.stop()
    keys_before = len(sandbox.world.auths)

    caplog.set_level(logging.WARNING, logger="twin.accounts")
    daemon = await make_daemon(cluster={"max_accounts": 1})
    accounts = daemon.app[keys.ACCOUNTS]
    default = await accounts.get("default")  # waits for the start-up connect
    assert default.authorized

    assert [account.name for account in accounts.known()] == ["default"]
    assert len(sandbox.world.auths) == keys_before  # reconnected with its stored key only
    assert any(
        "max_accounts" in r.getMessage() and "second" in r.getMessage() for r in caplog.records
    )
    status, body = await daemon.call(
        "POST", "/auth/request_code", json={"phone": "+15550300", "account": "third"}
    )
    assert status == 409 and "max_accounts" in body["error"]["message"]
