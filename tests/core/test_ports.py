"""Every implementation wired in lifecycle.py implements its port in twin/ports.py: each member
exists, and each method takes the port's parameters (same names, kinds and defaults; an
implementation may add optional ones). Pure introspection, no I/O."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

import pytest

from twin import ports
from twin.adapters.telegram.account import TelegramAccount
from twin.brain.service import Brain
from twin.clock import ManualClock, SystemClock
from twin.db.repo import Repository, Transaction
from twin.services.accounts import TelegramAccounts
from twin.services.events import EventLog
from twin.voice.stt import OpenAITranscriber
from twin.voice.voices import Voices

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

IMPLEMENTATIONS = [
    (ports.Clock, SystemClock),
    (ports.Clock, ManualClock),
    (ports.Store, Repository),
    (ports.Messenger, TelegramAccount),
    (ports.Accounts, TelegramAccounts),
    (ports.Thinker, Brain),
    (ports.SpeechToText, OpenAITranscriber),
    (ports.TextToSpeech, Voices),  # over ElevenLabsSpeaker / OpenAISpeaker, one per provider
    (ports.Events, EventLog),
]


def members(port: type) -> list[str]:
    machinery = set(dir(type("Plain", (), {}))) | {"_is_protocol", "_is_runtime_protocol"}
    return sorted(
        name
        for name in vars(port)
        if not name.startswith("_") and name not in machinery and name != "__init__"
    )


def parameters(function: Any) -> list[inspect.Parameter]:
    return list(inspect.signature(function).parameters.values())


def mismatches(port_function: Any, implementation: Any, *, drop: int = 1) -> list[str]:
    """How `implementation`'s parameters differ from the port's (`drop` leading ones of the
    implementation are not part of the port: self, or self and the connection)."""
    wanted = parameters(port_function)[1:]
    have = {p.name: p for p in parameters(implementation)[drop:]}
    problems = []
    for parameter in wanted:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in have.values()):
                problems.append(f"no **{parameter.name}")
            continue
        got = have.pop(parameter.name, None)
        if got is None:
            problems.append(f"lacks {parameter.name!r}")
        elif got.kind is not parameter.kind:
            problems.append(f"{parameter.name!r} is {got.kind.description}")
        elif got.default != parameter.default:
            problems.append(f"{parameter.name!r} defaults to {got.default!r}")
    for extra in have.values():
        if extra.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if extra.default is inspect.Parameter.empty and extra.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
        ):
            problems.append(f"requires {extra.name!r}, which the port does not pass")
    return problems


@pytest.mark.parametrize(
    ("port", "implementation"),
    IMPLEMENTATIONS,
    ids=[f"{p.__name__}-{i.__name__}" for p, i in IMPLEMENTATIONS],
)
def test_implementation_matches_its_port(port: type, implementation: type) -> None:
    assert port_problems(port, implementation) == {}


def port_problems(port: type, implementation: type) -> dict[str, list[str]]:
    """What `implementation` (a class) gets wrong of `port`, by member name."""
    problems = {}
    for name in members(port):
        wanted = inspect.getattr_static(port, name)
        have = inspect.getattr_static(implementation, name, None)
        if have is None:
            problems[name] = ["missing"]
            continue
        if isinstance(wanted, property) or not callable(wanted):
            continue
        if inspect.iscoroutinefunction(wanted) != inspect.iscoroutinefunction(
            getattr(implementation, name)
        ):
            problems[name] = ["async in one, not in the other"]
            continue
        drop = 0 if isinstance(have, staticmethod) else 1
        found = mismatches(wanted, getattr(implementation, name), drop=drop)
        if found:
            problems[name] = found
    return problems


def test_the_transaction_offers_every_operation_of_the_port() -> None:
    """Transaction's operations forward to the repository's `_name(connection, …)`: those
    implementations carry the signatures."""
    problems = {}
    for name in members(ports.Tx):
        if not hasattr(Transaction, name):
            problems[name] = ["missing"]
            continue
        target = "_update_chat_by_id" if name == "update_chat" else f"_{name}"
        found = mismatches(getattr(ports.Tx, name), getattr(Repository, target), drop=2)
        if found:
            problems[name] = found
    assert problems == {}


def test_the_check_finds_a_missing_member_and_a_wrong_parameter() -> None:
    class Broken:
        def now(self) -> None: ...

        async def sleep(self, duration: float) -> bool:
            return True

    assert ports.missing(Broken(), ports.Clock) == []
    assert mismatches(ports.Clock.sleep, Broken.sleep) == [
        "lacks 'seconds'",
        "lacks 'wake'",
        "requires 'duration', which the port does not pass",
    ]
    assert ports.missing(object(), ports.TextToSpeech) == ["aclose", "synthesize"]


def test_create_app_refuses_an_adapter_that_lacks_part_of_its_port() -> None:
    from twin.app import Adapters, create_app
    from twin.config import load_settings

    class Mute:  # a text-to-speech without aclose: would fail only at shutdown
        async def synthesize(self, text: str, *, voice_id: str | None = None) -> bytes:
            return b""

    with pytest.raises(TypeError, match=r"adapters\.tts \(Mute\) lacks aclose of twin\.ports"):
        create_app(load_settings(None), adapters=Adapters(tts=Mute(), clock=ManualClock(NOW)))
    app = create_app(load_settings(None), adapters=Adapters(clock=ManualClock(NOW)))
    assert app is not None
