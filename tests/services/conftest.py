"""Service-level fixtures: the storage backends of tests/db (SQLite always, PostgreSQL when
TWIN_TEST_POSTGRES_URL is set), a manual clock, and the fakes of tests/fakes.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import WatchedClock

# A Saturday morning: working hours and "the last hour" are whatever the test makes of them.
START = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> WatchedClock:
    return WatchedClock(START)
