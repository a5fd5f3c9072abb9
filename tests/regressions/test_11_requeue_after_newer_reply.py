"""Issue 11 (found in review): a reply failed by an outage was re-queued even though a newer reply
in the same chat (generated from the whole conversation, so it already answered the older
message) was sent after the outage: the contact is answered twice."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for_event
from tests.faults.test_provider_outage import events_of, start, wait_idle
from twin import keys

pytestmark = pytest.mark.e2e


async def test_contact_is_not_answered_twice_after_an_outage(sandbox, make_daemon, fake_openai):
    daemon, owner, (carl,) = await start(
        sandbox,
        make_daemon,
        fake_openai,
        friends=1,
        # one attempt, and a probe far enough away that only live traffic proves recovery
        twin={"max_attempts": 1, "retry_base_seconds": 5, "retry_max_seconds": 10},
    )
    fake_openai.start_outage(status=500)
    sandbox.send_message(carl, owner, "are you coming tonight?")
    failed = await wait_for_event(daemon, "reply.failed", timeout=30)
    assert failed["failure"] == "outage"

    fake_openai.end_outage()
    sandbox.send_message(carl, owner, "hello??")  # the contact pokes again
    sent = await wait_for_event(daemon, "reply.sent", timeout=30)
    assert sent["reply"] != failed["reply"]
    # What that success triggered (health -> on_recovered -> requeue) has run once this
    # pass, queued behind it on the recovery lock, returns.
    await daemon.app[keys.SERVICES]["recovery"].requeue("review")
    requeued = [e["reply"] for e in await events_of(daemon, "reply.requeued")]
    await wait_idle(daemon)

    assert failed["reply"] not in requeued, "the older reply was re-queued after a newer one"
    assert len(sandbox.messages_from(owner, carl)) == 1, sandbox.messages_from(owner, carl)
