"""MTProto service behaviour with the stock client: pings, ordering, clock resync, layer check."""

from __future__ import annotations

import pytest
from telethon import errors, functions
from telethon.tl.alltlobjects import LAYER

from twin.sandbox.server import SandboxServer

from .fixtures import Pair


async def test_ping_and_nearest_dc(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    pong = await sandbox_pair.a(functions.PingRequest(ping_id=777))
    assert pong.ping_id == 777
    nearest = await sandbox_pair.a(functions.help.GetNearestDcRequest())
    assert nearest.this_dc == sandbox.dc_id == nearest.nearest_dc


async def test_ping_delay_disconnect_closes_an_idle_connection(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    conn = next(c for c in sandbox.connections if c.user_id == sandbox_pair.bob.id)
    pong = await sandbox_pair.b(functions.PingDelayDisconnectRequest(ping_id=5, disconnect_delay=1))
    assert pong.ping_id == 5
    await sandbox.wait_for(lambda: conn.closed, timeout=5)
    # Telethon reconnects by itself and keeps working.
    assert (await sandbox_pair.b.get_me()).id == sandbox_pair.bob.id


async def test_ordered_requests_use_invoke_after_msg(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    peer = await sandbox_pair.a.get_input_entity(sandbox_pair.bob.id)
    requests = [
        functions.messages.SendMessageRequest(peer=peer, message=f"ordered {i}")
        for i in range(3)
    ]
    results = await sandbox_pair.a(requests, ordered=True)
    assert len(results) == 3
    texts = [m.message for m in sandbox.history(sandbox_pair.bob, sandbox_pair.alice)]
    assert texts == ["ordered 0", "ordered 1", "ordered 2"]


async def test_clock_jump_is_resynced_through_bad_msg_notification(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    sandbox.clock.skew = 400  # the client's msg_ids now look 400 s old to the server
    me = await sandbox_pair.a.get_me()  # bad_msg_notification(16) -> resync -> resend
    assert me.id == sandbox_pair.alice.id
    assert sandbox.bad_msg_notifications[16] >= 1
    sent = await sandbox_pair.a.send_message(sandbox_pair.bob.id, "after the jump")
    assert sent.id > 0


async def test_layer_mismatch_fails_loudly(sandbox: SandboxServer, sandbox_pair: Pair) -> None:
    with pytest.raises(errors.BadRequestError) as caught:
        await sandbox_pair.a(
            functions.InvokeWithLayerRequest(LAYER - 1, functions.help.GetConfigRequest())
        )
    assert caught.value.message == "LAYER_MISMATCH_WITH_SANDBOX"
    assert any(f"sandbox layer {LAYER}" in e for e in sandbox.internal_errors)
    sandbox.internal_errors.clear()  # expected here; any other internal error fails the test
