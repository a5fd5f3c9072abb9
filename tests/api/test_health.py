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


@pytest.mark.postgres
async def test_postgresql_going_unreachable_is_503(make_client, tmp_path) -> None:
    """A real PostgreSQL behind a proxy: up at start, then cut. (An unreachable database at
    start is waited for before anything is served: tests/faults/test_database_outage.py.)"""
    import os
    import uuid

    from sqlalchemy.engine import make_url

    from tests.db.conftest import _execute
    from tests.faults.proxy import TcpProxy

    base = os.environ.get("TWIN_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("TWIN_TEST_POSTGRES_URL is not set")
    name = f"twin_health_{uuid.uuid4().hex[:8]}"
    await _execute(base, f'CREATE DATABASE "{name}"')
    target = make_url(base).set(database=name)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        client = await make_client(settings=_real_settings(url, tmp_path), real_database=True)
        assert (await client.get("/health")).status == 200
        await proxy.stop()
        response = await client.get("/health")
        assert response.status == 503
        assert await response.json() == {
            "status": "degraded",
            "database": "down",
            "version": __version__,
        }
        await client.close()
    finally:
        await proxy.stop()
        await _execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
