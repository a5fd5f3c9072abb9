"""Issue 12.4: a browser frontend on a configured origin can call every route of the API.

Before: `PUT /settings` and `PUT /chats/{id}/settings` were refused at preflight (each endpoint
had a resource of its own; aiohttp-cors answers a preflight from the first resource of a path,
which knew only GET), and `GET /events` with `Last-Event-ID` was refused (header not allowed).
"""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import AUTH, ORIGIN, TOKEN
from tests.api.test_control import control_settings
from twin.api.routes import ROUTE_TABLES

ENDPOINTS = [endpoint for table in ROUTE_TABLES for endpoint in table]
# What a fetch-based client of this API may send besides simple headers.
REQUEST_HEADERS = "authorization, content-type, last-event-id, x-api-key, x-request-id"
EXPOSED = {"X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_every_route_passes_its_preflight(make_client, endpoint) -> None:
    client = await make_client(cors_origins=[ORIGIN])
    response = await client.options(
        _concrete(endpoint.path),
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": endpoint.method,
            "Access-Control-Request-Headers": REQUEST_HEADERS,
        },
    )
    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert endpoint.method in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        header.strip().lower()
        for header in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed == {header.strip() for header in REQUEST_HEADERS.split(",")}


@pytest.mark.parametrize("path", ["/settings", "/chats/{chat_id}/settings"])
async def test_both_methods_of_one_path_are_served_and_named_apart(make_client, path) -> None:
    client = await make_client(cors_origins=[ORIGIN])
    for method in ("GET", "PUT"):
        response = await client.options(
            _concrete(path), headers={"Origin": ORIGIN, "Access-Control-Request-Method": method}
        )
        assert response.status == 200, (method, await response.text())
        await client.request(method, _concrete(path), headers=AUTH)
    metrics = await (await client.get("/metrics", headers=AUTH)).text()
    for endpoint in (e for e in ENDPOINTS if e.path == path):
        # metrics and the access log still tell GET from PUT
        assert f'route="{endpoint.name}"' in metrics, endpoint.name


@pytest.fixture
async def real_client(make_client, tmp_path):
    """The real app on a real SQLite database, a browser frontend's origin configured."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    settings = control_settings(url, tmp_path, api={"tokens": [TOKEN], "cors_origins": [ORIGIN]})
    return await make_client(settings=settings, real_database=True)


async def test_a_cross_origin_put_exposes_the_request_id_and_rate_limit_headers(
    real_client,
) -> None:
    response = await real_client.put(
        "/settings", json={"twin": {"owner_name": "Ann"}}, headers={**AUTH, "Origin": ORIGIN}
    )
    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed >= EXPOSED
    for header in EXPOSED - {"Retry-After"}:  # Retry-After comes with a 429
        assert header in response.headers, header


async def test_an_origin_not_configured_gets_no_cors_headers(make_client, real_client) -> None:
    other = "https://elsewhere.example.test"
    client = await make_client(cors_origins=[ORIGIN])
    for endpoint in ENDPOINTS:
        response = await client.options(
            _concrete(endpoint.path),
            headers={
                "Origin": other,
                "Access-Control-Request-Method": endpoint.method,
                "Access-Control-Request-Headers": REQUEST_HEADERS,
            },
        )
        assert response.status == 403, endpoint.name
        assert not _cors_headers(response), endpoint.name
    response = await real_client.put("/settings", json={}, headers={**AUTH, "Origin": other})
    assert response.status == 200, await response.text()  # served, but not to its scripts
    assert not _cors_headers(response)


def _cors_headers(response) -> list[str]:
    return [h for h in response.headers if h.lower().startswith("access-control-")]
