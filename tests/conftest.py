"""Suite-wide fixtures: an environment free of the developer's TWIN_* variables, settings."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import pytest
import pytest_timeout

# Fixtures shared across test packages: the sandbox MTProto server and the provider fakes.
pytest_plugins = [
    "tests.sandbox.fixtures",
    "tests.providers.fixtures",
    "tests.providers.voice_fixtures",
]

_dump_threads = pytest_timeout.dump_stacks


def _awaiting(coro: object) -> Iterator[str]:
    """`file:line function` of each coroutine in `coro`'s await chain, outermost first."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def _dump_stacks(terminal) -> None:
    """pytest-timeout's dump of every thread, then the await chain of every asyncio task of the
    loop the hung test was running (its signal handler runs in the loop's thread)."""
    _dump_threads(terminal)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for task in asyncio.all_tasks(loop):
        terminal.sep("~", title=f"Task {task.get_name()}")
        for line in _awaiting(task.get_coro()):
            terminal.line(f"  {line}")


pytest_timeout.dump_stacks = _dump_stacks


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's exported TWIN_* secrets must never leak into (or change) a test.
    for name in list(os.environ):
        if name.upper().startswith("TWIN_") and not name.upper().startswith("TWIN_TEST_"):
            monkeypatch.delenv(name)
    # systemd's, for a unit with StateDirectory=: it would move the default data directory.
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
