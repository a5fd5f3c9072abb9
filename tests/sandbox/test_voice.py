"""Voice notes: upload in parts, sendMedia, the voice flag/attributes, byte-exact download."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import av
from telethon import events, types

from twin.sandbox.media import waveform
from twin.sandbox.server import SandboxServer

from .fixtures import Pair


async def test_voice_note_round_trip(
    sandbox: SandboxServer, sandbox_pair: Pair, voice_note_ogg: bytes, tmp_path: Path
) -> None:
    # Sanity: the fixture really is OGG/Opus.
    with av.open(io.BytesIO(voice_note_ogg)) as container:
        assert container.format.name == "ogg"
        assert container.streams.audio[0].codec_context.name == "opus"

    path = tmp_path / "note.ogg"
    path.write_bytes(voice_note_ogg)
    wave = waveform([0, 8, 16, 31, 16, 8] * 10)
    received: asyncio.Queue = asyncio.Queue()

    @sandbox_pair.b.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        await received.put(event.message)

    sent = await sandbox_pair.a.send_file(
        sandbox_pair.bob.id,
        path,
        voice_note=True,
        attributes=[types.DocumentAttributeAudio(duration=2, voice=True, waveform=wave)],
    )
    assert sent.voice is not None

    message = await asyncio.wait_for(received.get(), 5)
    assert message.voice is not None
    assert message.media.voice
    assert message.file.mime_type == "audio/ogg"
    assert message.file.duration == 2
    audio = next(a for a in message.voice.attributes if isinstance(a, types.DocumentAttributeAudio))
    assert audio.voice and audio.waveform == wave
    assert message.file.size == len(voice_note_ogg)

    data = await sandbox_pair.b.download_media(message, file=bytes)
    assert data == voice_note_ogg
    # The server's copy of Bob's message references the same stored document.
    stored = sandbox.history(sandbox_pair.bob, sandbox_pair.alice)[-1]
    assert stored.media.document.id == message.voice.id


async def test_big_file_upload_and_chunked_download(
    sandbox: SandboxServer, sandbox_pair: Pair
) -> None:
    blob = os.urandom(10 * 1024 * 1024 + 12345)  # > 10 MiB: Telethon uses saveBigFilePart
    sent = await sandbox_pair.a.send_file(
        sandbox_pair.bob.id, blob, force_document=True,
        attributes=[types.DocumentAttributeFilename("blob.bin")],
    )
    assert sent.file.size == len(blob)
    fetched = await sandbox_pair.b.get_messages(sandbox_pair.alice.id, limit=1)
    assert fetched[0].file.name == "blob.bin"
    assert await sandbox_pair.b.download_media(fetched[0], file=bytes) == blob
    assert sandbox.calls["upload.SaveBigFilePartRequest"] > 1
    assert sandbox.calls["upload.GetFileRequest"] > 1
