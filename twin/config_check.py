"""What `twin run` will do with valid settings: `twin check-config` reports it.

A configuration can be valid and still leave twin unable to do what its owner expects: no
Telegram credentials, no API token, no LLM key… `twin run` starts anyway (the API says what is
missing) or, for a few problems, refuses to start. `check()` finds both, one line each:

* `fatal`: `twin run` exits 2 (storage it cannot use, a text-to-speech provider it cannot build);
* `warnings`: `twin run` runs without a part (Telegram, the API, replies, transcription, voice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twin.brain.needs import llm_problems
from twin.config import MIN_TOKEN_LENGTH, Settings
from twin.db.files import reason, storage_problems
from twin.voice.needs import stt_problems, tts_problems

PKCS1_MARKER = "-----BEGIN RSA PUBLIC KEY-----"


@dataclass(frozen=True)
class Findings:
    fatal: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check(settings: Settings) -> Findings:
    findings = Findings()
    findings.fatal.extend(storage_problems(settings, create=False))
    findings.fatal.extend(
        f"{problem}: `twin run` refuses to start" for problem in tts_problems(settings.tts)
    )
    findings.warnings.extend(_telegram(settings))
    findings.warnings.extend(_api(settings))
    findings.warnings.extend(
        f"{problem}: messages are recorded but not answered"
        for problem in llm_problems(settings.llm)
    )
    findings.warnings.extend(
        f"{problem}: voice notes are not transcribed" for problem in stt_problems(settings.stt)
    )
    if settings.twin.voice_replies != "never" and settings.tts.provider == "none":
        findings.warnings.append(
            f"twin.voice_replies is {settings.twin.voice_replies!r} but tts.provider is 'none': "
            "every reply is sent as text"
        )
    return findings


def _telegram(settings: Settings) -> list[str]:
    telegram = settings.telegram
    problems = []
    if not telegram.api_id:
        problems.append(
            "telegram.api_id is 0 (get one at https://my.telegram.org): Telegram stays off"
        )
    if telegram.api_hash is None or not telegram.api_hash.get_secret_value():
        problems.append(
            "telegram.api_hash is not set (TWIN_TELEGRAM__API_HASH): Telegram stays off"
        )
    path = telegram.rsa_public_key_file
    if path is not None:
        try:
            pem = path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            problems.append(
                f"telegram.rsa_public_key_file: cannot read {path}: {reason(exc)}: "
                "Telegram cannot connect"
            )
        else:
            if PKCS1_MARKER not in pem:
                problems.append(
                    f"telegram.rsa_public_key_file: {path} is not a PEM PKCS#1 RSA public key "
                    f"({PKCS1_MARKER}): Telegram cannot connect"
                )
    return problems


def _api(settings: Settings) -> list[str]:
    tokens = [t.get_secret_value().strip() for t in settings.api.tokens]
    tokens = [t for t in tokens if t]
    if not tokens:
        return [
            "api.tokens is empty (TWIN_API__TOKENS): every endpoint but GET /health, GET /ready "
            "and /docs answers 503"
        ]
    short = sum(1 for token in tokens if len(token) < MIN_TOKEN_LENGTH)
    if short:
        return [
            f"api.tokens: {short} token(s) shorter than {MIN_TOKEN_LENGTH} characters, "
            "easy to guess (use `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        ]
    return []
