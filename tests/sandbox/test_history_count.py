"""How many messages a dialog holds, asked the cheap way (`twin style build` counts its total
so): Telethon's `get_messages(peer, limit=0)` sends one messages.getHistory for a single
message and reads the count of the answer's slice (or, for a short history, its length)."""

from __future__ import annotations

from telethon import functions

from twin.sandbox.server import SandboxServer

from .fixtures import Pair


async def test_a_history_is_counted_without_reading_it(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    alice, bob, a = sandbox_pair.alice, sandbox_pair.bob, sandbox_pair.a
    assert (await a.get_messages(bob.id, limit=0)).total == 0

    sandbox.send_message(bob, alice, "first")
    counted = await a.get_messages(bob.id, limit=0)
    assert counted.total == 1 and list(counted) == []  # counted, not read

    for n in range(149):  # both ways, past one page of history (100)
        sender, to = (alice, bob) if n % 2 else (bob, alice)
        sandbox.send_message(sender, to, f"m{n}")
    assert (await a.get_messages(bob.id, limit=0)).total == 150
    assert (await sandbox_pair.b.get_messages(alice.id, limit=0)).total == 150  # Bob's box too

    carol = sandbox.create_user("15550003", "Carol", username="carol_c")
    sandbox.add_contact(alice, carol)
    await a(functions.contacts.GetContactsRequest(hash=0))  # Carol into Alice's entity cache
    sandbox.send_message(carol, alice, "hi")
    assert (await a.get_messages(carol.id, limit=0)).total == 1  # each dialog its own count
    assert (await a.get_messages(bob.id, limit=0)).total == 150
