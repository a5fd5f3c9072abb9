"""GET /health: open to all, 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.conftest import FakeDatabase, api_settings
from twin import __version__
from twin.api.views import system
from twin.config import load_settings


async def test_healthy(make_client) -> None:
    database = FakeDatabase()
    client = await make_client(database=database)
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "version": __version__}
    assert database.pings == 1
    assert "X-Request-ID" in response.headers


async def test_head_is_answered(make_client) -> None:
    client = await make_client()
    response = await client.head("/health")
    assert response.status == 200


@pytest.mark.parametrize(
    "database", [FakeDatabase(healthy=False), FakeDatabase(error=OSError("connection refused"))]
)
async def test_database_down_is_503_degraded(make_client, database) -> None:
    client = await make_client(database=database)
    response = await client.get("/health")
    assert response.status == 503
    assert await response.json() == {
        "status": "degraded",
        "database": "down",
        "version": __version__,
    }


class HangingDatabase:
    async def ping(self) -> bool:
        await asyncio.Event().wait()  # never answers
        return True


async def test_hanging_database_times_out_as_down(make_client, monkeypatch) -> None:
    monkeypatch.setattr(system, "PING_TIMEOUT", 0.01)
    client = await make_client(database=HangingDatabase())
    response = await client.get("/health")
    assert response.status == 503
    assert (await response.json())["database"] == "down"


def _real_settings(url: str, tmp_path):
    base = api_settings()
    return load_settings(
        None,
        api=base.api.model_dump(),
        storage={"url": url},
        security={"secret_key": "health-test-secret-key-0123456789", "key_file": tmp_path / "k"},
    )


async def test_real_sqlite_database_is_healthy(make_client, tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    client = await make_client(settings=_real_settings(url, tmp_path), real_database=True)
    response = await client.get("/health")
    assert response.status == 200
    assert (await response.json())["database"] == "ok"


async def test_unreachable_postgresql_is_503(make_client, tmp_path) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/x"  # nothing listens on port 1
    client = await make_client(settings=_real_settings(url, tmp_path), real_database=True)
    response = await client.get("/health")
    assert response.status == 503
    assert await response.json() == {
        "status": "degraded",
        "database": "down",
        "version": __version__,
    }
