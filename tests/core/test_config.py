"""Configuration: file + env overrides, secrets only from env, one line per problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from twin.config import Settings, load_settings
from twin.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_states_exactly_the_defaults(tmp_path: Path) -> None:
    # The documented file shows every default: loading it must change nothing.
    from_file = load_settings(REPO / "config.toml")
    defaults = load_settings(write(tmp_path, ""))
    assert from_file.model_dump() == defaults.model_dump()


def _leaf_keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaf_keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_key_is_documented_in_config_toml() -> None:
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    secrets = {
        "telegram.api_hash",
        "api.tokens",
        "llm.api_key",
        "llm.fallback.api_key",
        "stt.api_key",
        "tts.api_key",
        "security.secret_key",
    }
    missing = []
    for key in _leaf_keys(Settings):
        leaf = key.rsplit(".", 1)[-1]
        if key in secrets:
            env = "TWIN_" + key.upper().replace(".", "__")
            if env not in text:
                missing.append(key)
        elif not re.search(rf"^#?\s*{re.escape(leaf)}\s*=", text, re.M) and not re.search(
            rf"^#?\s*\[+{re.escape(key)}\b", text, re.M
        ):
            missing.append(key)
    assert missing == []


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[api]\nport = 9000\n[llm]\nmodel = "from-file"\n')
    monkeypatch.setenv("TWIN_API__PORT", "9100")
    monkeypatch.setenv("TWIN_LLM__FALLBACK__PROVIDER", "gemini")
    settings = load_settings(path)
    assert settings.api.port == 9100
    assert settings.llm.model == "from-file"
    assert settings.llm.fallback.provider == "gemini"


def test_lists_from_env_accept_commas_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_API__TOKENS", "tok-one, tok-two")
    monkeypatch.setenv("TWIN_API__CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    settings = load_settings(None)
    assert [t.get_secret_value() for t in settings.api.tokens] == ["tok-one", "tok-two"]
    assert settings.api.cors_origins == ["https://a.example", "https://b.example"]


def test_secret_in_file_is_refused_with_the_env_name(tmp_path: Path) -> None:
    path = write(tmp_path, '[telegram]\napi_hash = "abc123"\n[llm]\napi_key = "sk-x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert len(info.value.problems) == 2
    assert "TWIN_TELEGRAM__API_HASH" in info.value.problems[0]
    assert "TWIN_LLM__API_KEY" in info.value.problems[1]
    assert all("abc123" not in p and "sk-x" not in p for p in info.value.problems)


def test_secret_from_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cr3t-value\n", encoding="utf-8")
    monkeypatch.setenv("TWIN_SECURITY__SECRET_KEY_FILE", str(secret))
    settings = load_settings(None)
    assert settings.security.secret_key is not None
    assert settings.security.secret_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" in settings.secret_values()


def test_every_problem_is_one_line_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[api]\nport = "eighty"\ncolour = "blue"\n[schedule]\ntimezone = "Mars/Base"\n'
        '[storage]\nurl = "mysql://x"\n[telegram]\nserver = "nohost"\n',
    )
    monkeypatch.setenv("TWIN_TWIN__TAKEOVER_MINUTES", "-1")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = info.value.problems
    keys = sorted(p.split(":", 1)[0] for p in problems)
    assert keys == sorted(
        [
            "api.port",
            "api.colour",
            "schedule.timezone",
            "storage.url",
            "telegram.server",
            "twin.takeover_minutes",
        ]
    )
    assert all("\n" not in p for p in problems)
    assert any("unknown key" in p for p in problems if p.startswith("api.colour"))


def test_invalid_toml_and_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "[api\nport=1"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_masked_output_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_API__TOKENS", "token-aaaa")
    monkeypatch.setenv("TWIN_TELEGRAM__API_HASH", "hash-bbbb")
    monkeypatch.setenv("TWIN_LLM__FALLBACK__API_KEY", "key-cccc")
    settings = load_settings(None)
    dumped = repr(settings.masked())
    for secret in ("token-aaaa", "hash-bbbb", "key-cccc"):
        assert secret not in dumped
    assert settings.masked()["api"]["tokens"] == ["********"]
    assert sorted(settings.secret_values()) == ["hash-bbbb", "key-cccc", "token-aaaa"]


def test_settings_are_frozen() -> None:
    settings = load_settings(None)
    with pytest.raises(ValueError):
        settings.api.port = 1  # type: ignore[misc]


def test_a_table_in_the_file_replaces_the_default_table(tmp_path: Path) -> None:
    # Listing only Monday means only Monday is open: defaults are not merged into tables.
    settings = load_settings(write(tmp_path, '[schedule.hours]\nmon = ["09:00-18:00"]\n'))
    assert settings.schedule.hours == {"mon": ["09:00-18:00"]}
