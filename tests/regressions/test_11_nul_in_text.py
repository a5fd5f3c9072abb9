"""Issue 11 (found by the API fuzzing): a NUL character is valid in a Telegram message but not
in PostgreSQL text, so such a message could never be stored: lost, never answered."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import contact_client, fast_pipeline, login, people
from tests.faults.checks import assert_exactly_once, wait_all_answered


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest) -> dict:
    if request.param == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_database")
    return {"url": url.render_as_string(hide_password=False)}


async def test_a_message_with_a_nul_is_stored_and_answered(
    sandbox, sandbox_clients, make_daemon, fake_openai, storage
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"), storage=storage)
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)

    await carl.send_message(owner.id, "a\x00b")

    await wait_all_answered(daemon, contact.id, 1)
    status, body = await daemon.call("GET", f"/messages?chat={contact.id}")
    assert [m["text"] for m in body["messages"] if m["direction"] == "incoming"] == ["a\ufffdb"]
    await assert_exactly_once(daemon, sandbox, owner, contact)
