"""The twins' voices: one speaker per configured TTS provider, chosen by the twin's voice.

A twin's voice names a provider and a voice id (`PUT /twins/{name}` `voice`). [tts] provider
speaks for twins that name none, in their voice id or else [tts]'s own voice; [tts.openai] /
[tts.elevenlabs] add the other provider's account for twins that name it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from twin.ports import TextToSpeech
from twin.voice.errors import SpeechUnavailable
from twin.voice.models import VoiceNote

__all__ = ["Voices"]

log = logging.getLogger("twin.voice")


class Voices:
    """The TextToSpeech port over the speakers of every configured provider."""

    name = "tts"

    def __init__(self, speakers: Mapping[str, TextToSpeech], default: str | None) -> None:
        self._speakers = dict(speakers)
        self._default = default
        self._warned: set[str] = set()

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._speakers)

    async def synthesize(
        self, text: str, *, voice_id: str | None = None, provider: str | None = None
    ) -> VoiceNote:
        """`text` in the voice `voice_id` of `provider` (None: [tts] provider)."""
        speaker = self._speakers.get(provider or self._default or "")
        if speaker is None and provider is not None and self._default is not None:
            # The twin names a provider whose account is no longer configured: [tts]'s own
            # voice rather than no voice at all (its voice id belongs to the other provider).
            if provider not in self._warned:
                self._warned.add(provider)
                log.warning(
                    "a twin's voice names tts provider %r, which is not configured "
                    "([tts.%s]); speaking in [tts]'s voice",
                    provider,
                    provider,
                )
            speaker, voice_id = self._speakers[self._default], None
        if speaker is None:
            raise SpeechUnavailable(
                f"no text-to-speech provider for this voice ({provider or 'tts.provider'} "
                "is not configured)",
                transient=False,
            )
        return await speaker.synthesize(text, voice_id=voice_id)

    async def aclose(self) -> None:
        for speaker in self._speakers.values():
            await speaker.aclose()
