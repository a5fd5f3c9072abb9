"""A migrated database of each backend and its repository, for the knowledge base's tests."""

from __future__ import annotations

import pytest

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin.config import load_settings
from twin.db import migrate
from twin.db.engine import database


@pytest.fixture
async def store(engine_url, tmp_path):  # noqa: F811
    await migrate.upgrade(engine_url)
    settings = load_settings(
        None,
        storage={"url": engine_url, "data_dir": tmp_path},
        security={"secret_key": "knowledge-test-secret-0123456789"},
    )
    async with database(settings) as db:
        yield settings, db.repo
