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


async def test_a_sweep_reads_again_only_chats_with_new_messages_and_skips_refused_ones(
    sandbox, sandbox_clients, make_daemon, fake_openai
):
    """Review of issue 11: reading every recent chat every few minutes is request volume
    Telegram notices; and one chat Telegram refuses to show must not stop the sweep."""
    owner, contact = people(sandbox)
    other = sandbox.create_user("15550300", "Dana", "Other", username="dana_other")
    sandbox.add_contact(owner, other)
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)
    for sender in (contact, other):
        sandbox.send_message(sender, owner, "hello")
        await wait_for_event(daemon, "reply.sent")
    intake = daemon.app[keys.INTAKE]
    account = await daemon.app[keys.ACCOUNTS].get()

    async def sweep() -> int:
        return await account.sweep(lambda chat, ids: intake.recorded_ids("default", chat, ids))

    await sweep()  # reads every recent chat once
    reads = sandbox.calls["messages.GetHistoryRequest"]
    assert await sweep() == 0
    assert sandbox.calls["messages.GetHistoryRequest"] == reads  # nothing new: nothing read

    sandbox.faults.drop_updates(1.0)  # two messages the daemon never hears of
    sandbox.send_message(contact, owner, "lost one")
    sandbox.send_message(other, owner, "lost two")
    sandbox.faults.clear()
    sandbox.faults.rpc_error("messages.getHistory", 400, "CHANNEL_PRIVATE", times=1)
    assert await sweep() == 1  # the first chat read was refused, the other one was swept
    assert sandbox.calls["messages.GetHistoryRequest"] == reads + 2
    assert await sweep() == 1  # the refused one is found the next time
    await wait_all_answered(daemon, contact.id, 2)
    await wait_all_answered(daemon, other.id, 2)
