"""Voice end to end with real audio: the contact's OGG/Opus note → transcription (fake Whisper,
which decodes it) → the transcript in the prompt → a voice reply synthesised by the fake
ElevenLabs (real MP3) → converted to OGG/Opus → a proper Telegram voice note."""

from __future__ import annotations

import asyncio

from telethon import events, functions, types

from tests.e2e.conftest import (
    AUTH,
    CONTACT_PHONE,
    OWNER_PHONE,
    brain_reply,
    fast_pipeline,
    login,
    wait_for_event,
)
from twin.voice.audio import probe
from twin.voice.waveform import unpack_levels

# ~10 s of synthesized speech at the fake's 0.06 s per character: long enough that Telegram's
# whole-second duration is within 10 % of the audio.
LONG_REPLY = "I got your voice note, thanks! " * 5 + "Talk soon, and say hi to everyone."


def voice_settings(fake_openai, fake_openai_audio, fake_elevenlabs, **sections) -> dict:
    return fast_pipeline(
        fake_openai.base_url + "/v1",
        stt={
            "provider": "openai",
            "base_url": fake_openai_audio.base_url + "/v1",
            "api_key": "sk-stt",
            "max_retries": 0,
            **sections.pop("stt", {}),
        },
        tts={
            "provider": "elevenlabs",
            "base_url": fake_elevenlabs.base_url,
            "api_key": "xi-test",
            "voice_id": "owner-voice",
            "max_retries": 0,
        },
        twin={"voice_replies": "mirror", **sections.pop("twin", {})},
        **sections,
    )


async def start(sandbox, sandbox_clients, make_daemon, settings):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    contact = sandbox.create_user(CONTACT_PHONE, "Carl", username="carl_contact")
    sandbox.add_contact(owner, contact)
    sandbox.add_contact(contact, owner)
    daemon = await make_daemon(**settings)
    await login(daemon, sandbox)
    carl = await sandbox_clients.signed_in(CONTACT_PHONE)
    await carl(functions.contacts.GetContactsRequest(hash=0))
    inbox: asyncio.Queue = asyncio.Queue()

    @carl.on(events.NewMessage(incoming=True, from_users=[owner.id]))
    async def on_message(event):
        inbox.put_nowait(event.message)

    return daemon, owner, contact, carl, inbox


async def send_voice(carl, owner_id: int, ogg: bytes, seconds: int = 2) -> None:
    await carl.send_file(
        owner_id,
        ogg,
        voice_note=True,
        attributes=[types.DocumentAttributeAudio(duration=seconds, voice=True)],
    )


async def test_voice_note_is_transcribed_and_answered_with_a_voice_note(
    sandbox,
    sandbox_clients,
    make_daemon,
    fake_openai,
    fake_openai_audio,
    fake_elevenlabs,
    voice_note_ogg,
):
    fake_openai_audio.transcript = "can you pick up milk on the way home"
    fake_openai_audio.expect_duration = 1.5  # the fake rejects anything but our real 1.5 s note
    daemon, owner, contact, carl, inbox = await start(
        sandbox,
        sandbox_clients,
        make_daemon,
        voice_settings(fake_openai, fake_openai_audio, fake_elevenlabs),
    )
    fake_openai.queue_reply(brain_reply(LONG_REPLY))

    await send_voice(carl, owner.id, voice_note_ogg)
    reply = await asyncio.wait_for(inbox.get(), 30)

    prompt = " ".join(m["content"] for m in fake_openai.last_messages if m["role"] == "user")
    assert "can you pick up milk on the way home" in prompt
    assert reply.voice is not None
    audio = next(
        a for a in reply.document.attributes if isinstance(a, types.DocumentAttributeAudio)
    )
    assert audio.voice is True
    data = await carl.download_media(reply, file=bytes)
    info = probe(data)
    assert info.codec == "opus" and info.sample_rate == 48000 and info.channels == 1
    assert abs(audio.duration - info.duration_s) <= 0.1 * info.duration_s
    assert len(unpack_levels(audio.waveform)) == 100
    assert fake_elevenlabs.requests and "owner-voice" in fake_elevenlabs.requests[-1].path

    status, body = await daemon.call("GET", "/messages", params={"chat": contact.id})
    incoming = next(m for m in body["messages"] if m["direction"] == "incoming")
    assert incoming["kind"] == "voice"
    assert incoming["transcript"] == "can you pick up milk on the way home"
    assert incoming["cost_usd"] > 0  # transcription is paid per minute
    # both notes play in the admin app: read from Telegram when asked (twin keeps no sound)
    heard = await daemon.client.get(f"/messages/{incoming['id']}/audio", headers=AUTH)
    assert heard.status == 200 and heard.content_type == "audio/ogg"
    assert await heard.read() == voice_note_ogg
    spoken = next(m for m in body["messages"] if m["direction"] == "outgoing")
    heard = await daemon.client.get(f"/messages/{spoken['id']}/audio", headers=AUTH)
    assert heard.status == 200 and await heard.read() == data


async def test_failing_tts_sends_the_same_reply_as_text(
    sandbox,
    sandbox_clients,
    make_daemon,
    fake_openai,
    fake_openai_audio,
    fake_elevenlabs,
    voice_note_ogg,
):
    daemon, owner, contact, carl, inbox = await start(
        sandbox,
        sandbox_clients,
        make_daemon,
        voice_settings(fake_openai, fake_openai_audio, fake_elevenlabs),
    )
    fake_elevenlabs.fail_next(times=5, status=500)
    fake_openai.queue_reply(brain_reply("Sure, will do."))

    await send_voice(carl, owner.id, voice_note_ogg)
    reply = await asyncio.wait_for(inbox.get(), 30)
    assert reply.voice is None
    assert reply.message == "Sure, will do."
    await wait_for_event(daemon, "reply.sent")
    assert sandbox.messages_from(owner, contact) == ["Sure, will do."]


async def test_voice_note_longer_than_max_seconds_follows_the_fallback(
    sandbox,
    sandbox_clients,
    make_daemon,
    fake_openai,
    fake_openai_audio,
    fake_elevenlabs,
    voice_note_ogg,
):
    daemon, owner, contact, carl, inbox = await start(
        sandbox,
        sandbox_clients,
        make_daemon,
        voice_settings(
            fake_openai,
            fake_openai_audio,
            fake_elevenlabs,
            stt={"max_seconds": 1.0, "fallback": "skip"},
        ),
    )
    await send_voice(carl, owner.id, voice_note_ogg)  # 1.5 s > 1 s
    skipped = await wait_for_event(daemon, "reply.skipped")
    assert skipped["reason"] == "too_long_voice"
    assert fake_openai_audio.requests == []  # never uploaded
    assert fake_openai.chat_requests == []  # never answered blindly
    assert sandbox.messages_from(owner, contact) == []


async def test_send_message_with_voice_true_sends_a_synthesized_note(
    sandbox,
    sandbox_clients,
    make_daemon,
    fake_openai,
    fake_openai_audio,
    fake_elevenlabs,
):
    daemon, owner, contact, carl, inbox = await start(
        sandbox,
        sandbox_clients,
        make_daemon,
        voice_settings(fake_openai, fake_openai_audio, fake_elevenlabs),
    )
    status, body = await daemon.call(
        "POST",
        "/send_message",
        json={
            "chat": "@carl_contact",
            "text": LONG_REPLY,
            "voice": True,
            "allow_first_contact": True,
        },
    )
    assert status == 200 and body["voice"] is True, body
    message = await asyncio.wait_for(inbox.get(), 30)
    assert message.voice is not None
    # The twin's voice, once it has one, is the voice the owner's notes are spoken in.
    status, _ = await daemon.call(
        "PUT", "/twins/default", json={"voice": {"provider": "elevenlabs", "voice_id": "twin-v"}}
    )
    assert status == 200
    status, _ = await daemon.call(
        "POST", "/send_message", json={"chat": "@carl_contact", "text": "again", "voice": True}
    )
    assert status == 200
    assert fake_elevenlabs.syntheses[-1].voice_id == "twin-v"
