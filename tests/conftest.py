"""Suite-wide fixtures: an environment free of the developer's TWIN_* variables, settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

# Fixtures shared across test packages: the sandbox MTProto server and the provider fakes.
pytest_plugins = [
    "tests.sandbox.fixtures",
    "tests.providers.fixtures",
    "tests.providers.voice_fixtures",
]


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
