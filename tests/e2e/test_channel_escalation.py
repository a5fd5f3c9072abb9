"""An HTTP-channel conversation handed to the owner tells them on Telegram, as a Telegram chat
does (issue 14, item 3): a note in the Saved Messages of the logged-in account answering as the
same twin, sent once, after the answer, through the sandbox MTProto server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import OWNER_PHONE, fast_pipeline, login, wait_for_event
from twin import keys

pytestmark = pytest.mark.e2e


def escalating(text: str) -> dict[str, Any]:
    return {"text": text, "requires_human": True, "intent": "pricing", "confidence": 0.9,
            "end_conversation": False}


async def test_an_escalated_chat_thread_is_noted_in_the_owners_saved_messages(
    sandbox, make_daemon, fake_openai
) -> None:
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    await login(daemon, sandbox)  # the default account answers as the default twin
    fake_openai.queue_reply(escalating("Let me ask Olga."))

    status, said = await daemon.call(
        "POST", "/api/chat",
        json={"message": "Can I get 20% off for 100 pieces?", "thread_id": "lead-7"},
    )
    assert status == 200 and said["escalated"] is True

    notes = await sandbox.wait_for(
        lambda: [n for n in sandbox.messages_from(owner, owner) if "twin needs you" in n]
    )
    [note] = notes  # type: ignore[misc]
    assert "http_chat conversation lead-7" in note
    assert "Topic: pricing." in note
    assert "Can I get 20% off for 100 pieces?" in note
    assert '/resume {"account": "chat"}' in note
    # the note's random_id was stored with the escalation before it was sent
    escalated = await wait_for_event(daemon, "conversation.escalated")
    reply = await daemon.app[keys.DATABASE].repo.get_reply(escalated["reply"])
    assert isinstance(reply.flags.get("notify_random_id"), int)
    # a second message while paused is stored, not answered, and tells nobody again
    status, later = await daemon.call(
        "POST", "/api/chat", json={"message": "Hello?", "thread_id": "lead-7"}
    )
    assert status == 200 and later["escalated"] is True and later["response"] == ""
    assert len([n for n in sandbox.messages_from(owner, owner) if "twin needs you" in n]) == 1
