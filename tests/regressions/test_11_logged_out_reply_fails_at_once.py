"""Issue 11 (found in review): a reply of an account that was logged out meanwhile was retried
as if Telegram were reconnecting, then failed as an *outage* — which the outage probe kept
choosing first (it can never succeed), holding back every other chat's recovery. A logged-out
account is a refusal: the reply fails at once, as permanent."""

from __future__ import annotations

from tests.e2e.conftest import wait_for_event
from tests.e2e.test_pipeline import slow_reader
from twin import keys


async def test_a_pending_reply_of_a_logged_out_account_fails_at_once(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    daemon, clock, owner, _, carl, _ = await slow_reader(
        sandbox, sandbox_clients, make_daemon, fake_openai, read_delay=30
    )
    await carl.send_message(owner.id, "are you there?")
    await wait_for_event(daemon, "reply.scheduled")
    status, _ = await daemon.call("POST", "/auth/logout", json={})
    assert status == 200

    await clock.advance(31)
    failed = await wait_for_event(daemon, "reply.failed")
    assert failed["failure"] == "permanent"
    reply = await daemon.app[keys.DATABASE].repo.get_reply(failed["reply"])
    assert reply.attempts == 1
