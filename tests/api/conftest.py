"""API fixtures: the real app from `create_app`, with a fake database unless a test needs one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from twin.api.routes import add_routes
from twin.api.validation import RouteTable
from twin.app import Adapters, create_app
from twin.config import Settings, load_settings

TOKEN = "t0k3n-0123456789abcdef"
OTHER_TOKEN = "t0k3n-second-fedcba9876"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "https://admin.example.test"


class FakeDatabase:
    """Answers ping() with `healthy`, or raises `error` when set."""

    def __init__(self, healthy: bool = True, error: Exception | None = None) -> None:
        self.healthy = healthy
        self.error = error
        self.pings = 0

    async def ping(self) -> bool:
        self.pings += 1
        if self.error is not None:
            raise self.error
        return self.healthy


def api_settings(**api: Any) -> Settings:
    values: dict[str, Any] = {"tokens": [TOKEN, OTHER_TOKEN], "cors_origins": []}
    values.update(api)
    return load_settings(None, api=values)


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client) -> MakeClient:
    """`await make_client(routes=table, database=db, **api_settings)` -> a client of the app.

    `real_database=True` opens the database of `settings.storage` through the lifecycle.
    """

    async def make(
        *,
        routes: RouteTable | None = None,
        database: Any = None,
        settings: Settings | None = None,
        real_database: bool = False,
        **api: Any,
    ) -> TestClient:
        if not real_database and database is None:
            database = FakeDatabase()
        app = create_app(settings or api_settings(**api), adapters=Adapters(database=database))
        if routes is not None:
            add_routes(app, routes)  # test-only endpoints, routed exactly like real ones
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    return await make_client()


def assert_error(body: dict, type_: str, request_id: str | None = None) -> dict:
    """The one error shape, exactly."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "message", "details", "request_id"}
    assert error["type"] == type_
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    for detail in error["details"]:
        assert set(detail) == {"field", "error"}
    if request_id is not None:
        assert error["request_id"] == request_id
    return error
