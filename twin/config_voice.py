"""The speech sections: [stt] (voice notes → text) and [tts] (replies → the owner's voice),
with the accounts of further TTS providers a twin's voice may name ([tts.openai],
[tts.elevenlabs])."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from twin.config_behaviour import Section

__all__ = ["STTSettings", "TTSAccount", "TTSSettings"]


class STTSettings(Section):
    provider: Literal["openai", "none"] = "openai"
    model: str = "whisper-1"
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    max_seconds: float = Field(300.0, gt=0)
    max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    language: str | None = None
    price_per_minute: float = Field(0.006, ge=0)
    fallback: Literal["skip", "escalate"] = "escalate"


class TTSAccount(Section):
    """[tts.openai] / [tts.elevenlabs]: a provider's account for twins whose voice names a
    provider other than [tts] provider (set api_key, or base_url for a keyless server)."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str = ""  # empty: [tts] model (openai: its default model)

    @property
    def configured(self) -> bool:
        return bool(self.base_url) or bool(self.api_key and self.api_key.get_secret_value())


class TTSSettings(Section):
    provider: Literal["none", "elevenlabs", "openai"] = "none"
    voice_id: str = ""
    model: str = "eleven_multilingual_v2"
    base_url: str | None = None
    api_key: SecretStr | None = None
    stability: float = Field(0.5, ge=0, le=1)
    similarity_boost: float = Field(0.75, ge=0, le=1)
    style: float = Field(0.0, ge=0, le=1)
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0)
    openai_voice: str = "alloy"
    openai: TTSAccount = Field(default_factory=TTSAccount)
    elevenlabs: TTSAccount = Field(default_factory=TTSAccount)

    def providers(self) -> tuple[str, ...]:
        """The providers a twin's voice may name: [tts] provider and every configured account."""
        names = [] if self.provider == "none" else [self.provider]
        for name in ("elevenlabs", "openai"):
            if name != self.provider and getattr(self, name).configured:
                names.append(name)
        return tuple(names)

    def of(self, provider: str) -> TTSSettings:
        """These settings with `provider`'s account ([tts] itself for [tts] provider)."""
        if provider == self.provider:
            return self
        account: TTSAccount = getattr(self, provider)
        return self.model_copy(
            update={
                "provider": provider,
                "api_key": account.api_key,
                "base_url": account.base_url,
                "model": account.model or _default_model(provider, self.model),
                "voice_id": "",
            }
        )


def _default_model(provider: str, model: str) -> str:
    """[tts] model when it is one of `provider`'s, else its default ("" for openai: see
    twin.voice.factory.openai_tts_model)."""
    if provider == "elevenlabs":
        return model if model.startswith("eleven_") else "eleven_multilingual_v2"
    return "" if model.startswith("eleven_") else model
