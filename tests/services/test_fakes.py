"""The fakes of tests/fakes.py implement the ports they stand in for, checked the way
tests/core/test_ports.py checks the real adapters (names, parameters, async-ness), and behave
like the peer where tests rely on it (Telegram's memory of random_ids)."""

from __future__ import annotations

import pytest

from tests.core.test_ports import port_problems
from tests.fakes import FakeAccounts, FakeMessenger, ScriptedLLM
from twin import ports
from twin.brain.port import LLM
from twin.errors import TelegramUnavailable

FAKES = [
    (ports.Messenger, FakeMessenger),
    (ports.Accounts, FakeAccounts),
    (LLM, ScriptedLLM),
]


@pytest.mark.parametrize(
    ("port", "fake"), FAKES, ids=[f"{p.__name__}-{f.__name__}" for p, f in FAKES]
)
def test_fake_matches_its_port(port: type, fake: type) -> None:
    assert port_problems(port, fake) == {}


async def test_messenger_remembers_random_ids_and_fails_when_told() -> None:
    messenger = FakeMessenger()
    messenger.fail_sends(TelegramUnavailable("down"), times=1)
    with pytest.raises(TelegramUnavailable):
        await messenger.send_text(7, "hi", random_id=1)
    first = await messenger.send_text(7, "hi", random_id=1)
    again = await messenger.send_text(7, "hi", random_id=1)
    assert first.message_id is not None and not first.duplicate
    assert again.duplicate and again.message_id is None
    assert messenger.texts(7) == ["hi"]  # delivered once
    assert len(messenger.attempts) == 3
