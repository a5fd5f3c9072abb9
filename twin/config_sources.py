"""Where configuration values come from (twin.config builds Settings from these sources).

* The environment: `TWIN_<SECTION>__<KEY>[__<SUBKEY>…]` names one key, at any depth (dict
  entries too: `TWIN_SCHEDULE__HOURS__MON`). Its text is decoded by the type of that key:
  a list takes a single value (`@spam`), comma-separated values (`a,b`) or a JSON array; a
  table (section, dict) takes a JSON object; anything else is passed on as text for pydantic to
  parse. Lists of prose (`twin.facts`, marked `ONE_ITEM_PER_VALUE`) are not split at commas.
* Secret files: `TWIN_<SECTION>__<KEY>_FILE=/run/secrets/x` supplies a secret from a file.
* config.toml, already parsed by twin.config (and stripped of refused secrets).

With twin.config, the only reader of os.environ. Problems are collected in the LoadContext
rather than raised, so the caller reports them together with the validation errors, and each
key that came from the environment remembers its variable, for error messages.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from twin.errors import ConfigError

ENV_PREFIX = "TWIN_"
ENV_DELIMITER = "__"
FILE_SUFFIX = "_FILE"


class _OneItemPerValue:
    """Field marker for lists of prose: from the environment a value is one item (commas are
    part of the text); several items are given as a JSON array."""

    def __repr__(self) -> str:
        return "ONE_ITEM_PER_VALUE"


ONE_ITEM_PER_VALUE = _OneItemPerValue()

Kind = Literal["list", "table", "scalar"]


@dataclass
class LoadContext:
    """One `load_settings` call: the file's data in, problems and variable names out."""

    file_data: dict[str, Any] = field(default_factory=dict)
    base_dir: Path | None = None  # relative TWIN_*_FILE paths are relative to this directory
    problems: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # dotted key → variable name

    def origin(self, key: str) -> str | None:
        """The variable that set `key`, or the table or list holding it, or the only variable
        that set something inside it."""
        inside = [v for k, v in self.origins.items() if k.startswith((key + ".", key + "["))]
        while key:
            if key in self.origins:
                return self.origins[key]
            shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", key)
            if shorter == key:
                break
            key = shorter
        return inside[0] if len(inside) == 1 else None


loading: ContextVar[LoadContext | None] = ContextVar("twin_config_loading", default=None)


def env_name(path: tuple[str, ...] | list[str]) -> str:
    return ENV_PREFIX + ENV_DELIMITER.join(part.upper() for part in path)


# --- the type of a key ---------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The type behind `Annotated[T, …]` and `T | None`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def kind_of(annotation: Any) -> Kind:
    node = _unwrap(annotation)
    origin = typing.get_origin(node)
    if origin in (list, tuple, set, frozenset) or node in (list, tuple, set, frozenset):
        return "list"
    if origin is dict or node is dict or _is_model(node):
        return "table"
    return "scalar"


@dataclass(frozen=True)
class KeyType:
    annotation: Any
    prose: bool = False  # a list whose items are prose: not split at commas

    @property
    def kind(self) -> Kind:
        return kind_of(self.annotation)


def key_type(model: type[BaseModel], path: tuple[str, ...]) -> KeyType | None:
    """The type of the key at `path` below `model`; None when there is no such key."""
    current = KeyType(model)
    for part in path:
        node = _unwrap(current.annotation)
        if _is_model(node):
            info = node.model_fields.get(part)
            if info is None:
                return None
            prose = any(isinstance(m, _OneItemPerValue) for m in info.metadata)
            current = KeyType(info.annotation, prose)
        elif typing.get_origin(node) is dict:
            current = KeyType(typing.get_args(node)[1])
        else:
            return None
    return current


def list_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every list-valued key below `model`; a dict's entries appear as `<name>`."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        node = _unwrap(info.annotation)
        if kind_of(node) == "list":
            yield path
        elif _is_model(node):
            yield from list_keys(node, path)
        elif typing.get_origin(node) is dict:
            value = typing.get_args(node)[1]
            if kind_of(value) == "list":
                yield (*path, "<name>")
            elif _is_model(_unwrap(value)):
                yield from list_keys(_unwrap(value), (*path, "<name>"))


def secret_paths(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every key typed `SecretStr` (alone, optional or in a list)."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if _is_secret_annotation(annotation):
            yield (*prefix, name), info
        elif _is_model(annotation):
            yield from secret_paths(annotation, (*prefix, name))


def _is_secret_annotation(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_annotation(arg) for arg in typing.get_args(annotation))


# --- decoding text by type -----------------------------------------------------------------------


def decode(text: str, key: KeyType, variable: str) -> Any:
    """The value of `text` (from `variable`) for a key of type `key`; ValueError says why not."""
    stripped = text.strip()
    if key.kind == "list":
        if stripped.startswith(("[", "{")):
            value = _json(stripped, variable)
            return value if isinstance(value, list) else [value]
        if not stripped:
            return []
        if key.prose:
            return [stripped]
        return [item.strip() for item in stripped.split(",") if item.strip()]
    if key.kind == "table":
        if not stripped.startswith("{"):
            raise ValueError(
                f"{variable} must be a JSON object, or set {variable}{ENV_DELIMITER}<KEY> "
                "for each key"
            )
        return _json(stripped, variable)
    return text


def _json(text: str, variable: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{variable} is not valid JSON ({exc.msg} at column {exc.colno}); a value starting "
            "with [ or { is read as JSON"
        ) from None


def _place(data: dict[str, Any], path: tuple[str, ...], value: Any) -> bool:
    """Put `value` at `path` in nested dicts, over what a less specific variable put there
    (variables are placed in sorted order, so TWIN_A before TWIN_A__B); False on a clash."""
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return False
        node = child
    existing = node.get(path[-1])
    if isinstance(existing, dict) and isinstance(value, dict):
        _merge(existing, value)
    else:
        node[path[-1]] = value
    return True


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for name, value in update.items():
        if isinstance(target.get(name), dict) and isinstance(value, dict):
            _merge(target[name], value)
        else:
            target[name] = value


# --- sources -------------------------------------------------------------------------------------


class _ContextSource(PydanticBaseSettingsSource):
    """A source reporting its problems to the current LoadContext (or raising without one)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ builds the whole dict at once

    @staticmethod
    def context() -> LoadContext:
        return loading.get() or LoadContext()

    @staticmethod
    def report(context: LoadContext, problems: list[str]) -> None:
        if loading.get() is None and problems:
            raise ConfigError(problems)
        context.problems.extend(problems)


class TomlDataSource(_ContextSource):
    """The already-parsed config.toml (parsed once by load_settings, checked for secrets)."""

    def __call__(self) -> dict[str, Any]:
        return dict(self.context().file_data)


class EnvSource(_ContextSource):
    """`TWIN_SECTION__KEY[__SUBKEY…]` variables, each decoded by the type of its key."""

    def __call__(self) -> dict[str, Any]:
        context = self.context()
        secret_files = {env_name(path) + FILE_SUFFIX for path, _ in secret_paths(self.settings_cls)}
        data: dict[str, Any] = {}
        problems: list[str] = []
        placed: list[tuple[str, ...]] = []
        for variable, text in sorted(os.environ.items()):
            upper = variable.upper()
            if not upper.startswith(ENV_PREFIX) or upper in secret_files:
                continue
            path = tuple(upper[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER))
            if path[0] not in self.settings_cls.model_fields:
                continue  # not ours (e.g. TWIN_TEST_POSTGRES_URL)
            key = ".".join(path)
            target = key_type(self.settings_cls, path)
            if target is None or not all(path):
                problems.append(f"{key}: unknown key (from {variable})")
                continue
            try:
                value = decode(text, target, variable)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
            if not _place(data, path, value):
                problems.append(f"{key}: {variable} clashes with another TWIN_ variable")
                continue
            context.origins[key] = variable
            placed.append(path)
        for path in placed:
            self._keep_rest_of_table(data, path, context)
        self.report(context, problems)
        return data

    def _keep_rest_of_table(
        self, data: dict[str, Any], path: tuple[str, ...], context: LoadContext
    ) -> None:
        """A variable naming one entry of a table (`TWIN_SCHEDULE__HOURS__MON`) overrides that
        entry: the table's other entries stay as the file, or else the default, has them."""
        node: Any = self.settings_cls
        for depth, part in enumerate(path[:-1]):
            info = node.model_fields[part]
            table = path[: depth + 1]
            if typing.get_origin(_unwrap(info.annotation)) is dict:
                if (
                    _get(context.file_data, table) is None
                    and ".".join(table) not in context.origins
                ):
                    default = info.get_default(call_default_factory=True)
                    entries = TypeAdapter(info.annotation).dump_python(default)
                    _merge(entries, _get(data, table))
                    _get(data, table[:-1])[table[-1]] = entries
                return
            node = _unwrap(info.annotation)
            if not _is_model(node):
                return


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


class SecretFileSource(_ContextSource):
    """`TWIN_SECTION__KEY_FILE=/run/secrets/x` supplies a secret from a file (systemd, Docker)."""

    def __call__(self) -> dict[str, Any]:
        context = self.context()
        data: dict[str, Any] = {}
        problems: list[str] = []
        for path, _ in secret_paths(self.settings_cls):
            key = ".".join(path)
            variable = env_name(path) + FILE_SUFFIX
            file_name = environ_get(variable)
            if not file_name:
                continue
            secret_file = Path(file_name).expanduser()
            if context.base_dir is not None and not secret_file.is_absolute():
                secret_file = context.base_dir / secret_file
            try:
                text = secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"{key}: cannot read {secret_file} ({variable}): {exc.strerror}")
                continue
            target = key_type(self.settings_cls, path)
            assert target is not None  # secret_paths names existing keys
            try:
                value = decode(text, target, variable)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
            _place(data, path, value)
            context.origins.setdefault(key, variable)
        self.report(context, problems)
        return data


def environ_get(name: str) -> str | None:
    """The variable `name`, matched case-insensitively (as the other TWIN_ variables are)."""
    for variable, value in os.environ.items():
        if variable.upper() == name:
            return value
    return None
