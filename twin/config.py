"""Configuration: config.toml overridden by `TWIN_<SECTION>__<KEY>` environment variables.

Read once into frozen objects by `load_settings()`; this module and its sources
(twin/config_sources.py: how each variable is decoded) are the only readers of os.environ.
Secrets (typed `SecretStr`) are accepted only from the environment, or from a file named by
`TWIN_<SECTION>__<KEY>_FILE`: a secret found in config.toml is refused, because config files get
committed, copied and pasted into bug reports.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from twin.config_behaviour import (
    HumanizeSettings,
    ScheduleSettings,
    Section,
    TwinSettings,
)
from twin.config_channels import ChannelsSettings
from twin.config_cluster import ClusterSettings
from twin.config_knowledge import KnowledgeSettings
from twin.config_safety import SafetySettings
from twin.config_sources import (
    EnvSource,
    LoadContext,
    SecretFileSource,
    TomlDataSource,
    env_name,
    loading,
    secret_paths,
)
from twin.config_tools import ToolsSettings
from twin.config_voice import STTSettings, TTSSettings
from twin.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_DATA_DIR = Path("sessions")
# systemd sets this for a unit with StateDirectory= (the unit `twin service-unit` prints has
# StateDirectory=twin, so /var/lib/twin, created for the unit's user): the default data directory.
STATE_DIRECTORY_VARIABLE = "STATE_DIRECTORY"
DATABASE_FILE_NAME = "twin.db"
KEY_FILE_NAME = "secret.key"
MIN_TOKEN_LENGTH = 16  # shorter API tokens work, but are warned about (start-up, check-config)


class TelegramSettings(Section):
    api_id: int = Field(0, ge=0, description="App id from my.telegram.org (0 = not configured)")
    api_hash: SecretStr | None = None
    server: str = Field("", description='"host:port" of a custom MTProto server; empty = Telegram')
    dc_id: int = Field(2, ge=1, le=1000)
    rsa_public_key_file: Path | None = None
    test_mode: bool = False
    device_model: str = "twin"
    system_version: str = "Linux"
    app_version: str = "twin 0.1"
    lang_code: str = "en"
    system_lang_code: str = "en"
    flood_sleep_threshold: int = Field(5, ge=0)
    request_retries: int = Field(5, ge=0)
    connection_retries: int = Field(-1, ge=-1)
    reconnect_backoff_base: float = Field(
        1.0, gt=0, le=3600, description="seconds: the shortest wait between reconnect attempts"
    )
    reconnect_backoff_max: float = Field(
        60.0, gt=0, le=3600, description="seconds: the longest wait between reconnect attempts"
    )
    max_catch_up_age: float = Field(6 * 3600, ge=0, description="seconds")
    sweep_interval: float = Field(300, gt=0, description="seconds between reconciliation sweeps")
    # Before [cluster] existed: still read (as [cluster] max_accounts when that is not set).
    max_accounts: int | None = Field(None, ge=1, description="deprecated: [cluster] max_accounts")

    @field_validator("server")
    @classmethod
    def _server_is_host_port(cls, value: str) -> str:
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"'{value}' is not host:port")
        return value

    @model_validator(mode="after")
    def _backoff_in_order(self) -> TelegramSettings:
        if self.reconnect_backoff_max < self.reconnect_backoff_base:
            raise ValueError(
                f"reconnect_backoff_max ({self.reconnect_backoff_max:g}) < "
                f"reconnect_backoff_base ({self.reconnect_backoff_base:g})"
            )
        return self


class StorageSettings(Section):
    data_dir: Path = Field(
        DEFAULT_DATA_DIR,
        description="where the SQLite database and the key file live unless url / key_file say "
        "otherwise; default $STATE_DIRECTORY under systemd, else sessions/ next to the config",
    )
    url: str = "sqlite+aiosqlite:///sessions/twin.db"  # unset: data_dir/twin.db (see load_settings)
    echo: bool = False
    busy_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds a SQLite write waits for a lock held elsewhere"
    )
    max_held_updates: int = Field(
        10_000, ge=0, description="received updates kept in memory while the database is down"
    )
    retention_days: float = Field(
        0, ge=0, description="remove message texts and transcripts older than this (0 = keep)"
    )

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class SecuritySettings(Section):
    secret_key: SecretStr | None = None
    key_file: Path = Path("sessions/secret.key")  # unset: data_dir/secret.key (see load_settings)


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, lt=65536)
    tokens: list[SecretStr] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    rate_limit_requests: int = Field(
        600, ge=0, description="requests per API token per rate_limit_seconds; 0 = no limit"
    )
    rate_limit_seconds: float = Field(60.0, gt=0)
    login_attempts: int = Field(
        5, ge=0, description="per login endpoint, per account and per client address; 0 = off"
    )
    login_window_seconds: float = Field(900.0, gt=0)
    # the admin app's browser sessions (twin.services.app_sessions)
    session_idle_minutes: float = Field(
        720.0, gt=0, le=60 * 24 * 30, description="a session without a request ends after this"
    )
    session_max_days: float = Field(30.0, gt=0, le=365, description="a session ends after this")
    # The business API's own limits, per minute (0 = off): conversation per user_id, messaging
    # per platform + chat_id, analytics per API key.
    conversation_per_minute: int = Field(100, ge=0)
    messaging_per_minute: int = Field(30, ge=0)
    analytics_per_minute: int = Field(20, ge=0)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="reverse proxies (addresses or networks) whose X-Forwarded-For is believed",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"'{entry}' is not an IP address or network") from None
        return value


class ModelPrice(Section):
    input: float = Field(0.0, ge=0, description="USD per 1M prompt tokens")
    output: float = Field(0.0, ge=0, description="USD per 1M completion tokens")


LLMProvider = Literal["openai", "openai_compatible", "gemini", "echo"]


class LLMFallbackSettings(Section):
    provider: LLMProvider | Literal[""] = ""
    model: str = ""
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(30.0, gt=0)


class LLMSettings(Section):
    provider: LLMProvider = "openai"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_base: float = Field(0.5, ge=0)
    backoff_max: float = Field(20.0, ge=0)
    context_tokens: int = Field(3000, ge=200)
    max_output_tokens: int = Field(400, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)
    json_mode: Literal["json_schema", "json_object", "none"] = "json_schema"
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    fallback: LLMFallbackSettings = Field(default_factory=LLMFallbackSettings)
    max_retry_after: float = Field(60.0, ge=0, description="longer Retry-After: fall back now")
    thinking_budget: int | None = Field(None, ge=0, description="Gemini thinking tokens")

    @model_validator(mode="after")
    def _room_for_prompt(self) -> LLMSettings:
        if self.context_tokens - self.max_output_tokens < 1000:
            raise ValueError("context_tokens must exceed max_output_tokens by at least 1000")
        return self


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    sdk_debug: bool = Field(
        False,
        description="let libraries (provider SDKs and their HTTP clients, alembic, aiosqlite) "
        "log at DEBUG (whole prompts); otherwise they log WARNING and above",
    )


class Settings(BaseSettings):
    """The whole effective configuration. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    stt: STTSettings = Field(default_factory=STTSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    twin: TwinSettings = Field(default_factory=TwinSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    humanize: HumanizeSettings = Field(default_factory=HumanizeSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @model_validator(mode="before")
    @classmethod
    def _old_max_accounts(cls, data: Any) -> Any:
        """`[telegram] max_accounts` (the key before `[cluster]`) still counts, unless
        `[cluster] max_accounts` is set too."""
        if not isinstance(data, dict):
            return data
        telegram, cluster = data.get("telegram"), data.get("cluster")
        old = telegram.get("max_accounts") if isinstance(telegram, dict) else None
        if old is not None and not (isinstance(cluster, dict) and "max_accounts" in cluster):
            data = {
                **data,
                "cluster": {**(cluster if isinstance(cluster, dict) else {}), "max_accounts": old},
            }
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: explicit kwargs, env, env-named secret files, config.toml.
        return (
            init_settings,
            EnvSource(settings_cls),
            SecretFileSource(settings_cls),
            TomlDataSource(settings_cls),
        )

    def secret_values(self) -> list[str]:
        """Every configured secret in clear text: the log redaction filter masks these."""
        return [secret.get_secret_value() for _, secret in _iter_secrets(self) if secret]

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with every secret replaced by a marker."""
        return _mask(self.model_dump())


# --- secrets ---------------------------------------------------------------------------------


def _iter_secrets(model: BaseModel) -> Iterator[tuple[str, SecretStr | None]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            yield name, value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, SecretStr):
                    yield name, item
        elif isinstance(value, BaseModel):
            yield from _iter_secrets(value)


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {key: _mask(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _secrets_in_file(data: dict[str, Any]) -> list[str]:
    problems = []
    for path, _ in secret_paths(Settings):
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, "", []):
            dotted, variable = ".".join(path), env_name(path)
            problems.append(
                f"{dotted}: secrets are not accepted in the config file; "
                f"set {variable} (or {variable}_FILE) in the environment instead"
            )
    return problems


# --- loading ---------------------------------------------------------------------------------


_NAMED_KEY = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+|\[\d+\])+): ")


def _format_error(error: dict[str, Any], context: LoadContext) -> str:
    """One line `key: problem`, plus the variable the key came from when it was set by one."""
    location = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    ).lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    named = _NAMED_KEY.match(message)
    if named:  # the domain parser already named the exact key
        key, line = named.group(1), message
    else:
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        key, line = location, f"{location or '(config)'}: {message}"
    variable = context.origin(key) if key else None
    return f"{line} (from {variable})" if variable else line


def find_config_file(path: Path | None) -> Path | None:
    """The config file `load_settings(path)` reads, as an absolute path: `path` (a ConfigError
    if it does not exist), else ./config.toml when it exists, else None (defaults + env)."""
    target = path or DEFAULT_CONFIG_PATH
    if not target.exists():
        if path is not None:
            raise ConfigError([f"{target}: config file not found"])
        return None
    return Path(os.path.abspath(target))


def read_config_file(path: Path | None) -> dict[str, Any]:
    """Parse config.toml; a missing default file is fine (defaults + env), a named one is not."""
    target = find_config_file(path)
    if target is None:
        return {}
    try:
        with target.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{target}: invalid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{target}: cannot read the config file: {exc.strerror}"]) from None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate the configuration; raise ConfigError listing every problem.

    Relative paths (the SQLite file in storage.url, storage.data_dir, security.key_file,
    telegram.rsa_public_key_file, and files named by TWIN_*_FILE variables), wherever they were
    set, are relative to the directory of the config file read, or to the current directory
    when there is none; the settings returned hold absolute paths."""
    config_file = find_config_file(path)
    base = config_file.parent if config_file is not None else Path(os.path.abspath(os.curdir))
    data = read_config_file(config_file)
    problems = _secrets_in_file(data)
    context = LoadContext(file_data=_without_secrets(data), base_dir=base)
    token = loading.set(context)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems += [_format_error(e, context) for e in exc.errors()]
    finally:
        loading.reset(token)
    problems = context.problems + problems
    if problems:
        raise ConfigError(problems)
    return resolve_paths(settings, base)


def state_directory() -> Path | None:
    """systemd's $STATE_DIRECTORY (the first one when the unit names several), if set."""
    value = os.environ.get(STATE_DIRECTORY_VARIABLE, "").split(":")[0]
    return Path(value) if value and os.path.isabs(value) else None


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """`settings` with every path absolute (relative ones are relative to `base`) and the data
    directory's defaults filled in: storage.data_dir, when not set, is $STATE_DIRECTORY (under
    systemd) or else `base`/sessions; storage.url and security.key_file, when not set, are
    twin.db and secret.key in it."""
    from twin.db.files import sqlite_path, with_sqlite_path

    def absolute(path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else Path(os.path.normpath(base / path))

    storage, security, telegram = settings.storage, settings.security, settings.telegram
    if "data_dir" in storage.model_fields_set:
        data_dir = absolute(storage.data_dir)
    else:
        data_dir = state_directory() or absolute(DEFAULT_DATA_DIR)
    url = storage.url
    if "url" not in storage.model_fields_set:
        url = with_sqlite_path(url, data_dir / DATABASE_FILE_NAME)
    else:
        database = sqlite_path(url)
        if database is not None and not database.is_absolute():
            url = with_sqlite_path(url, absolute(database))
    if "key_file" in security.model_fields_set:
        key_file = absolute(security.key_file)
    else:
        key_file = data_dir / KEY_FILE_NAME
    rsa_key = telegram.rsa_public_key_file
    return settings.model_copy(
        update={
            "storage": storage.model_copy(update={"data_dir": data_dir, "url": url}),
            "security": security.model_copy(update={"key_file": key_file}),
            "telegram": telegram.model_copy(
                update={"rsa_public_key_file": absolute(rsa_key) if rsa_key else None}
            ),
        }
    )


def _without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of the file's data minus refused secrets, so the rest is still validated."""
    result = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for path, _ in secret_paths(Settings):
        node: Any = result
        for part in path[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if isinstance(child, dict):
                child = node[part] = dict(child)
            node = child
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return result
