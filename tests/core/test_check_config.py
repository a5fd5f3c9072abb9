"""Issue 12.7: `twin check-config` tells the truth about what `twin run` will do.

A valid configuration that leaves Telegram, the API, replies or transcription off is reported
line by line (warnings, exit 0; errors with --strict, exit 2); what would stop `twin run`
(storage it cannot use, a voice it cannot build) is an error either way. The first line says
which config file was read."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.core.test_cli import REPO, run_twin

READY = {
    "TWIN_TELEGRAM__API_ID": "12345",
    "TWIN_TELEGRAM__API_HASH": "0123456789abcdef0123456789abcdef",
    "TWIN_API__TOKENS": "a-long-enough-token-123",
    "TWIN_LLM__API_KEY": "sk-test",
    "TWIN_STT__API_KEY": "sk-test",
}


def lines(text: str, prefix: str) -> list[str]:
    return [line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)]


def test_the_repository_config_without_secrets_warns_about_each_missing_part(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_bytes((REPO / "config.toml").read_bytes())
    result = run_twin("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"# config file: {tmp_path / 'config.toml'}"
    assert tomllib.loads(result.stdout)["storage"]["data_dir"] == str(tmp_path / "sessions")
    warnings = lines(result.stderr, "warning: ")
    assert [w.split(" ")[0].rstrip(":") for w in warnings] == [
        "telegram.api_id",
        "telegram.api_hash",
        "api.tokens",
        "llm.api_key",
        "stt.api_key",
    ]
    assert "Telegram stays off" in warnings[0] and "503" in warnings[2]
    assert "messages are recorded but not answered" in warnings[3]

    strict = run_twin("check-config", "--strict", cwd=tmp_path)
    assert strict.returncode == 2
    assert lines(strict.stderr, "config error: ") == warnings
    assert not (tmp_path / "sessions").exists()  # checking creates nothing


def test_a_ready_configuration_has_nothing_to_report(tmp_path: Path) -> None:
    result = run_twin("check-config", "--strict", cwd=tmp_path, env=READY)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("# no config file (")
    assert "defaults and the environment" in result.stdout.splitlines()[0]

    # An OpenAI-compatible local server needs its base_url, not a key.
    (tmp_path / "config.toml").write_text(
        '[llm]\nprovider = "openai_compatible"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        '[stt]\nprovider = "none"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in READY.items() if k not in ("TWIN_LLM__API_KEY", "TWIN_STT__API_KEY")}
    result = run_twin("check-config", "--strict", cwd=tmp_path, env=env)
    assert (result.returncode, result.stderr) == (0, "")


def test_files_and_settings_twin_run_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.toml").write_text(
        '[telegram]\nrsa_public_key_file = "server.pem"\n'
        '[llm.fallback]\nprovider = "gemini"\n'
        '[twin]\nvoice_replies = "mirror"\n',
        encoding="utf-8",
    )
    env = {**READY, "TWIN_API__TOKENS": "short"}
    result = run_twin("check-config", "--config", "conf/config.toml", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    pem = tmp_path / "conf" / "server.pem"
    assert lines(result.stderr, "warning: ") == [
        f"telegram.rsa_public_key_file: cannot read {pem}: no such file or directory: "
        "Telegram cannot connect",
        "api.tokens: 1 token(s) shorter than 16 characters, easy to guess (use `python -c "
        "'import secrets; print(secrets.token_urlsafe(32))'`)",
        "llm.fallback.model: required when llm.fallback.provider is set: messages are recorded "
        "but not answered",
        "llm.fallback.api_key: required for provider 'gemini' (TWIN_LLM__FALLBACK__API_KEY): "
        "messages are recorded but not answered",
        "twin.voice_replies is 'mirror' but tts.provider is 'none': every reply is sent as text",
    ]

    pem.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    result = run_twin("check-config", "--config", "conf/config.toml", cwd=tmp_path, env=env)
    assert f"telegram.rsa_public_key_file: {pem} is not a PEM PKCS#1 RSA public key" in (
        result.stderr
    )


def test_what_stops_twin_run_is_an_error_without_strict(tmp_path: Path) -> None:
    (tmp_path / "sessions").write_text("a file where the data directory should be")
    (tmp_path / "config.toml").write_text('[tts]\nprovider = "elevenlabs"\n', encoding="utf-8")
    result = run_twin("check-config", cwd=tmp_path, env=READY)
    assert result.returncode == 2
    assert lines(result.stderr, "config error: ") == [
        f"data directory {tmp_path / 'sessions'} is not a directory",
        "tts.voice_id: required for provider 'elevenlabs': `twin run` refuses to start",
        "tts.api_key: required for provider 'elevenlabs' (TWIN_TTS__API_KEY): `twin run` refuses "
        "to start",
    ]
    assert lines(result.stderr, "warning: ") == []


def test_the_token_length_rule_is_the_apis(tmp_path: Path) -> None:
    from twin.api.auth import MIN_TOKEN_LENGTH
    from twin.config_check import MIN_TOKEN_LENGTH as checked

    assert checked == MIN_TOKEN_LENGTH
