"""What the speech providers need before they can be built (pure: no SDK is imported here).

`build_stt` / `build_tts` refuse a provider that lacks it; `twin check-config` reports the same
lines without building anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.config import STTSettings, TTSSettings


def key_problem(section: str, settings: STTSettings | TTSSettings) -> str | None:
    """A missing api_key, unless base_url points at a self-hosted compatible server (which
    usually needs no key)."""
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return None
    if settings.base_url:
        return None
    env = "TWIN_" + "__".join(section.upper().split(".")) + "__API_KEY"
    return f"{section}.api_key: required for provider {settings.provider!r} ({env})"


def stt_problems(settings: STTSettings) -> list[str]:
    if settings.provider == "none":
        return []
    problem = key_problem("stt", settings)
    return [problem] if problem else []


def tts_problems(settings: TTSSettings) -> list[str]:
    if settings.provider == "none":
        return []
    problems = []
    if settings.provider == "elevenlabs" and not settings.voice_id:
        problems.append("tts.voice_id: required for provider 'elevenlabs'")
    problem = key_problem("tts", settings)
    if problem:
        problems.append(problem)
    return problems
