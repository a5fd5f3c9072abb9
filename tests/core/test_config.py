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
    # The documented file shows every default: loading it must change nothing (both files in
    # one directory: relative paths are relative to it).
    (tmp_path / "repository.toml").write_bytes((REPO / "config.toml").read_bytes())
    from_file = load_settings(tmp_path / "repository.toml")
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
        "tts.openai.api_key",
        "tts.elevenlabs.api_key",
        "security.secret_key",
        "channels.talkme.secret",
        "channels.external.webhook_secret",
        "knowledge.embeddings.api_key",
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


# --- lists and tables from the environment -------------------------------------------------------

# Every list-valued key, in the three forms the environment takes: one value, `a,b`, JSON.
# Prose lists (facts, boundaries) keep commas: `a,b` is one item there.
LIST_KEYS = {
    "api.tokens": (
        ("tok-one", ["tok-one"]),
        ("tok-one, tok-two", ["tok-one", "tok-two"]),
        ('["tok-one", "tok-two"]', ["tok-one", "tok-two"]),
    ),
    "api.cors_origins": (
        ("https://a.example", ["https://a.example"]),
        ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example"]', ["https://a.example"]),
    ),
    "tools.allowed_hosts": (
        ("shop.example", ["shop.example"]),
        ("shop.example, 127.0.0.1:81", ["shop.example", "127.0.0.1:81"]),
        ('["shop.example"]', ["shop.example"]),
    ),
    "api.trusted_proxies": (
        ("10.0.0.1", ["10.0.0.1"]),
        ("10.0.0.1, 192.168.0.0/16", ["10.0.0.1", "192.168.0.0/16"]),
        ('["::1"]', ["::1"]),
    ),
    "twin.facts": (
        ("I live in Lisbon, Portugal", ["I live in Lisbon, Portugal"]),
        ("tea, not coffee", ["tea, not coffee"]),
        ('["I live in Lisbon, Portugal", "tea"]', ["I live in Lisbon, Portugal", "tea"]),
    ),
    "twin.boundaries": (
        ("No money, ever.", ["No money, ever."]),
        ("a, b", ["a, b"]),
        ('["No money, ever.", "No meetings."]', ["No money, ever.", "No meetings."]),
    ),
    "twin.include": (
        ("@alice_friend", ["@alice_friend"]),
        ("@alice_friend, 12345", ["@alice_friend", "12345"]),
        ('["@alice_friend", 12345]', ["@alice_friend", 12345]),
    ),
    "twin.exclude": (
        ("@spam", ["@spam"]),
        ("@spammer,-100123", ["@spammer", "-100123"]),
        ('["@spammer", -100123]', ["@spammer", -100123]),
    ),
    "schedule.hours.mon": (
        ("00:00-24:00", ["00:00-24:00"]),
        ("09:00-12:00, 13:00-18:00", ["09:00-12:00", "13:00-18:00"]),
        ('["09:00-12:00", "13:00-18:00"]', ["09:00-12:00", "13:00-18:00"]),
    ),
    "schedule.closed": (
        ("2026-12-24/2027-01-02", [("2026-12-24", "2027-01-02")]),
        ("2026-12-24/2027-01-02,2027-05-01", [("2026-12-24", "2027-01-02"), ("2027-05-01",) * 2]),
        (
            '[{"start": "2026-12-24", "end": "2027-01-02"}, "2027-05-01T09:00/2027-05-01T12:00"]',
            [("2026-12-24", "2027-01-02"), ("2027-05-01T09:00", "2027-05-01T12:00")],
        ),
    ),
}


def _env(key: str) -> str:
    return "TWIN_" + key.upper().replace(".", "__")


def _value(settings: Settings, key: str) -> object:
    node: object = settings
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if key == "api.tokens":
        return [token.get_secret_value() for token in node]  # type: ignore[attr-defined]
    if key == "schedule.closed":
        return [(span.start, span.end) for span in node]  # type: ignore[attr-defined]
    return node


def test_the_table_names_every_list_valued_key() -> None:
    from twin.config_sources import list_keys

    keys = {".".join(path).replace("<name>", "mon") for path in list_keys(Settings)}
    assert keys == set(LIST_KEYS)


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        pytest.param(key, text, expected, id=f"{key}-{form}")
        for key, forms in LIST_KEYS.items()
        for form, (text, expected) in zip(("single", "commas", "json"), forms, strict=True)
    ],
)
def test_every_list_key_from_the_environment(
    key: str, text: str, expected: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_env(key), text)
    assert _value(load_settings(None), key) == expected


def test_a_table_entry_from_the_environment_keeps_the_other_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_SCHEDULE__HOURS__MON", "00:00-24:00")
    monkeypatch.setenv("TWIN_SCHEDULE__HOURS__TUE", "")  # an empty list: closed on Tuesdays
    defaults = load_settings(write(tmp_path, "")).schedule.hours  # no hours in the file
    assert defaults == {
        **{day: ["08:00-23:00"] for day in ("wed", "thu", "fri", "sat", "sun")},
        "mon": ["00:00-24:00"],
        "tue": [],
    }
    file = write(tmp_path, '[schedule.hours]\nwed = ["10:00-11:00"]\n')
    assert load_settings(file).schedule.hours == {
        "mon": ["00:00-24:00"],
        "tue": [],
        "wed": ["10:00-11:00"],
    }
    # A whole table, like a table in the file, replaces the default one; the entries of
    # more specific variables override its entries.
    monkeypatch.setenv("TWIN_SCHEDULE__HOURS", '{"fri": ["09:00-17:00"], "tue": ["10:00-11:00"]}')
    assert load_settings(write(tmp_path, "")).schedule.hours == {
        "fri": ["09:00-17:00"],
        "mon": ["00:00-24:00"],
        "tue": [],
    }


def test_tables_and_scalars_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_LLM__PRICES", '{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}')
    monkeypatch.setenv("TWIN_LLM__FALLBACK", '{"provider": "gemini", "model": "g"}')
    monkeypatch.setenv("TWIN_TWIN__PERSONA", "[brackets] and {braces}, commas: text stays text")
    monkeypatch.setenv("TWIN_LOGGING__SDK_DEBUG", "true")
    settings = load_settings(None)
    assert settings.llm.prices["gpt-4o-mini"].output == 0.6
    assert (settings.llm.fallback.provider, settings.llm.fallback.model) == ("gemini", "g")
    assert settings.twin.persona == "[brackets] and {braces}, commas: text stays text"
    assert settings.logging.sdk_debug is True


def test_a_secret_file_holds_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tokens").write_text("tok-one,tok-two\n", encoding="utf-8")
    monkeypatch.setenv("TWIN_API__TOKENS_FILE", str(tmp_path / "tokens"))
    tokens = load_settings(None).api.tokens
    assert [t.get_secret_value() for t in tokens] == ["tok-one", "tok-two"]


@pytest.mark.parametrize(
    ("variable", "text", "problem"),
    [
        (
            "TWIN_TWIN__EXCLUDE",
            "@spam, @x",
            "twin.exclude: '@x' is not a chat id or @username (from TWIN_TWIN__EXCLUDE)",
        ),
        (
            "TWIN_TWIN__INCLUDE",
            "@good_name, not a name",
            "twin.include: 'not a name' is not a chat id or @username (from TWIN_TWIN__INCLUDE)",
        ),
        (
            "TWIN_TWIN__INCLUDE",
            '["@good_name", ',
            "twin.include: TWIN_TWIN__INCLUDE is not valid JSON (Expecting value at column 15); "
            "a value starting with [ or { is read as JSON",
        ),
        (
            "TWIN_SCHEDULE__HOURS__MON",
            "09:00-25:00",
            "schedule.hours.mon: '09:00-25:00' is not HH:MM-HH:MM (from TWIN_SCHEDULE__HOURS__MON)",
        ),
        (
            "TWIN_SCHEDULE__HOURS__MOONDAY",
            "09:00-17:00",
            "schedule.hours: unknown day 'moonday' (use mon, tue, wed, thu, fri, sat, sun)"
            " (from TWIN_SCHEDULE__HOURS__MOONDAY)",
        ),
        (
            "TWIN_SCHEDULE__HOURS",
            "mon=09:00-17:00",
            "schedule.hours: TWIN_SCHEDULE__HOURS must be a JSON object, or set "
            "TWIN_SCHEDULE__HOURS__<KEY> for each key",
        ),
        (
            "TWIN_SCHEDULE__CLOSED",
            "2026-12-24/someday",
            "schedule.closed[0].end: 'someday' is not an ISO date or datetime"
            " (from TWIN_SCHEDULE__CLOSED)",
        ),
        (
            "TWIN_API__CORS_ORIGINS",
            '{"origin": "https://a.example"}',
            "api.cors_origins[0]: Input should be a valid string (from TWIN_API__CORS_ORIGINS)",
        ),
        ("TWIN_API__COLOUR", "blue", "api.colour: unknown key (from TWIN_API__COLOUR)"),
        (
            "TWIN_LOGGING__SDK_DEBUG",
            "maybe",
            "logging.sdk_debug: Input should be a valid boolean, unable to interpret input"
            " (from TWIN_LOGGING__SDK_DEBUG)",
        ),
    ],
)
def test_bad_values_from_the_environment_name_the_key_and_the_variable(
    variable: str, text: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.problems == [problem]


# --- paths (issue 12.2): relative to the config file's directory -------------------------------


def test_relative_paths_are_relative_to_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    etc.mkdir()
    elsewhere.mkdir()
    (etc / "api_hash").write_text("hash-from-a-file\n", encoding="utf-8")
    config = etc / "config.toml"
    config.write_text(
        '[telegram]\nrsa_public_key_file = "keys/server.pem"\n'
        '[storage]\nurl = "sqlite+aiosqlite:///db/twin.db"\n'
        '[security]\nkey_file = "keys/secret.key"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("TWIN_TELEGRAM__API_HASH_FILE", "api_hash")
    settings = load_settings(Path("../etc/config.toml"))
    assert settings.storage.url == f"sqlite+aiosqlite:///{etc}/db/twin.db"
    assert settings.security.key_file == etc / "keys" / "secret.key"
    assert settings.telegram.rsa_public_key_file == etc / "keys" / "server.pem"
    assert settings.storage.data_dir == etc / "sessions"
    assert settings.telegram.api_hash.get_secret_value() == "hash-from-a-file"

    # The environment's relative paths too.
    monkeypatch.setenv("TWIN_STORAGE__URL", "sqlite+aiosqlite:///from-env.db")
    monkeypatch.setenv("TWIN_SECURITY__KEY_FILE", "from-env.key")
    settings = load_settings(Path("../etc/config.toml"))
    assert settings.storage.url == f"sqlite+aiosqlite:///{etc}/from-env.db"
    assert settings.security.key_file == etc / "from-env.key"


def test_the_data_directory_holds_the_default_database_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    config = write(tmp_path / "conf", "")
    settings = load_settings(config)
    assert settings.storage.data_dir == tmp_path / "conf" / "sessions"
    assert settings.storage.url == f"sqlite+aiosqlite:///{tmp_path}/conf/sessions/twin.db"
    assert settings.security.key_file == tmp_path / "conf" / "sessions" / "secret.key"

    config.write_text('[storage]\ndata_dir = "../state"\n', encoding="utf-8")
    settings = load_settings(config)
    assert settings.storage.data_dir == tmp_path / "state"
    assert settings.storage.url == f"sqlite+aiosqlite:///{tmp_path}/state/twin.db"
    assert settings.security.key_file == tmp_path / "state" / "secret.key"

    # PostgreSQL: the URL is left alone, the key file still lives in the data directory.
    monkeypatch.setenv("TWIN_STORAGE__URL", "postgresql+asyncpg://twin@db.example:5432/twin")
    settings = load_settings(config)
    assert settings.storage.url == "postgresql+asyncpg://twin@db.example:5432/twin"
    assert settings.security.key_file == tmp_path / "state" / "secret.key"


def test_without_a_config_file_paths_are_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWIN_SECURITY__KEY_FILE", "k/secret.key")
    settings = load_settings(None)
    assert settings.storage.url == f"sqlite+aiosqlite:///{tmp_path}/sessions/twin.db"
    assert settings.security.key_file == tmp_path / "k" / "secret.key"


def test_systemd_state_directory_is_the_default_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/twin:/var/lib/other")
    settings = load_settings(write(tmp_path, ""))
    assert settings.storage.data_dir == Path("/var/lib/twin")
    assert settings.storage.url == "sqlite+aiosqlite:////var/lib/twin/twin.db"
    assert settings.security.key_file == Path("/var/lib/twin/secret.key")

    # A data directory the configuration names wins.
    settings = load_settings(write(tmp_path, '[storage]\ndata_dir = "/srv/twin"\n'))
    assert settings.storage.url == "sqlite+aiosqlite:////srv/twin/twin.db"
    assert settings.security.key_file == Path("/srv/twin/secret.key")


def test_absolute_and_home_paths_stay_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = load_settings(
        write(
            tmp_path,
            '[storage]\nurl = "sqlite+aiosqlite:////abs/twin.db"\n'
            '[security]\nkey_file = "~/twin.key"\n',
        )
    )
    assert settings.storage.url == "sqlite+aiosqlite:////abs/twin.db"
    assert settings.security.key_file == tmp_path / "home" / "twin.key"
