"""Issue 11.2: the reconciliation sweep compares each recent private chat's newest messages
with what is stored, read or not. Before, it looked only at unread dialogs: a message whose
update was lost, in a chat the owner had read on another device, was never answered."""

from __future__ import annotations

from telethon import functions

from tests.e2e.conftest import (
    OWNER_PHONE,
    contact_client,
    fast_pipeline,
    login,
    people,
    wait_for_event,
)
from tests.faults.checks import assert_exactly_once, wait_all_answered
from twin import keys


async def test_a_lost_message_in_a_chat_read_elsewhere_is_found_and_answered(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    owner, contact = people(sandbox)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "hello")
    await wait_for_event(daemon, "reply.sent")

    sandbox.faults.drop_updates(1.0)  # the daemon never hears of the next message
    await carl.send_message(owner.id, "did you get my email?")
    sandbox.faults.clear()
    phone = await sandbox_clients.signed_in(OWNER_PHONE)  # the owner reads it on the phone
    await phone(functions.contacts.GetContactsRequest(hash=0))
    await phone.send_read_acknowledge(contact.id)
    [dialog] = [d for d in await phone.get_dialogs() if d.id == contact.id]
    assert dialog.unread_count == 0

    intake = daemon.app[keys.INTAKE]
    account = await daemon.app[keys.ACCOUNTS].get()
    taken = await account.sweep(lambda chat, ids: intake.recorded_ids("default", chat, ids))

    assert taken == 1
    await wait_all_answered(daemon, contact.id, 2)
    await assert_exactly_once(daemon, sandbox, owner, contact)
