"""Issue 12.6: accounts are manageable — GET /accounts lists them with their state (and creates
or connects nothing), DELETE /accounts/{name} logs one out at Telegram (history kept) or, with
`purge=true`, deletes it with its data; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import fast_pipeline, login, people, wait_for_event
from twin import keys

pytestmark = pytest.mark.e2e


async def _answered_once(daemon, sandbox, owner, contact) -> None:
    sandbox.send_message(contact, owner, "are you there?")
    await wait_for_event(daemon, "reply.sent", timeout=30)


async def test_accounts_are_listed_with_their_state_and_nothing_is_created(
    sandbox, make_daemon, fake_openai
):
    owner, _ = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    assert await daemon.call("GET", "/accounts") == (200, {"accounts": []})
    status, body = await daemon.call("DELETE", "/accounts/typo1")
    assert status == 404 and body["error"]["type"] == "not_found"
    assert await daemon.call("GET", "/accounts") == (200, {"accounts": []})

    await login(daemon, sandbox)
    status, body = await daemon.call("GET", "/accounts")
    assert status == 200
    [account] = body["accounts"]
    assert account["name"] == "default"
    assert account["status"] == "connected"
    assert account["authorized"] is True and account["connected"] is True
    assert account["user_id"] == owner.id
    assert account["phone"].startswith("+") and "*" in account["phone"]  # masked
    assert account["since"] is not None


async def test_deleting_an_account_logs_it_out_and_keeps_its_history(
    sandbox, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    await _answered_once(daemon, sandbox, owner, contact)

    status, body = await daemon.call("DELETE", "/accounts/default")
    assert (status, body) == (
        200,
        {"account": "default", "status": "logged_out", "telegram_logged_out": True},
    )
    assert sandbox.authorizations(owner) == 0  # the authorization ended at Telegram
    assert daemon.app[keys.ACCOUNTS].loaded("default") is None  # nothing restarts it
    event = await wait_for_event(daemon, "account.logged_out")
    assert event["account"] == "default"

    status, body = await daemon.call("GET", "/accounts")
    [account] = body["accounts"]
    assert (account["status"], account["authorized"]) == ("logged_out", False)
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    assert status == 200 and len(body["messages"]) >= 2  # history is kept

    # Logged out: a second delete has nothing to end at Telegram, and a new login works.
    status, body = await daemon.call("DELETE", "/accounts/default")
    assert status == 200 and body["telegram_logged_out"] is False
    await login(daemon, sandbox)
    status, body = await daemon.call("GET", "/accounts")
    assert body["accounts"][0]["status"] == "connected"


async def test_purging_an_account_deletes_it_with_its_data(sandbox, make_daemon, fake_openai):
    await _purge(sandbox, make_daemon, fake_openai, {})


@pytest.mark.postgres
async def test_purging_an_account_deletes_it_with_its_data_on_postgresql(
    sandbox, make_daemon, fake_openai, postgres_database
):
    url = postgres_database.render_as_string(hide_password=False)
    await _purge(sandbox, make_daemon, fake_openai, {"storage": {"url": url}})


async def _purge(sandbox, make_daemon, fake_openai, sections) -> None:
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"), **sections)
    await login(daemon, sandbox)
    await _answered_once(daemon, sandbox, owner, contact)

    status, body = await daemon.call("DELETE", "/accounts/default", params={"purge": "true"})
    assert (status, body) == (
        200,
        {"account": "default", "status": "deleted", "telegram_logged_out": True},
    )
    assert sandbox.authorizations(owner) == 0
    assert await daemon.call("GET", "/accounts") == (200, {"accounts": []})
    repo = daemon.app[keys.DATABASE].repo
    events = await repo.events_since(0, limit=1000)
    assert [e.type for e in events] == ["account.deleted"]  # the account's own went with it
    assert events[0].data == {"account": "default"}
    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    assert status == 404  # `default` is implicit again, and new: it has no chats
