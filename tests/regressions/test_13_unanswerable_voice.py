"""Issue 13.3: a message no retry can make understandable (a voice note that cannot be
transcribed) went through the retry path only to be special-cased there. Now it never does:
`[stt] fallback` decides at the first attempt — escalate to the owner, or skip with the reason.
(Behaviour kept; the escalate branch had no test.)"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for_event
from tests.e2e.test_voice import send_voice, start, voice_settings
from twin import keys

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("fallback", "event", "state"),
    [("escalate", "reply.escalated", "skipped"), ("skip", "reply.skipped", "skipped")],
)
async def test_a_voice_note_that_cannot_be_understood_follows_the_fallback_at_once(
    sandbox,
    sandbox_clients,
    make_daemon,
    fake_openai,
    fake_openai_audio,
    fake_elevenlabs,
    voice_note_ogg,
    fallback,
    event,
    state,
):
    daemon, owner, contact, carl, _ = await start(
        sandbox,
        sandbox_clients,
        make_daemon,
        voice_settings(
            fake_openai,
            fake_openai_audio,
            fake_elevenlabs,
            stt={"max_seconds": 1.0, "fallback": fallback},
            twin={"max_attempts": 5},
        ),
    )
    await send_voice(carl, owner.id, voice_note_ogg)  # 1.5 s > max_seconds: TooLong
    done = await wait_for_event(daemon, event, timeout=30)
    reply = await daemon.app[keys.DATABASE].repo.get_reply(done["reply"])
    assert reply.state.value == state
    assert reply.attempts == 1  # decided at the first attempt, never rescheduled
    assert fake_openai.chat_requests == []  # never answered blindly
    if fallback == "escalate":
        notes = sandbox.messages_from(owner, owner)  # the owner's Saved Messages
        assert any("twin needs you" in note for note in notes)
    assert sandbox.messages_from(owner, contact) == []
