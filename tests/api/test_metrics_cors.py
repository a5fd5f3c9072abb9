"""/metrics counts requests by route name and status; CORS only for configured origins."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import AUTH, ORIGIN, assert_error
from twin.api.metrics import METRICS


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def count(found, method: str, route: str, status: str) -> float:
    key = ("twin_http_requests_total", (("method", method), ("route", route), ("status", status)))
    return found.get(key, 0.0)


async def test_metrics_count_requests_by_route_name_and_status(client) -> None:
    for _ in range(3):
        await client.get("/health")
    await client.post("/echo", json={"message": "hi"}, headers=AUTH)
    await client.post("/echo", json={}, headers=AUTH)
    await client.post("/echo", json={"message": "hi"})
    await client.get("/random/path/123", headers=AUTH)
    await client.request("PROPFIND", "/health", headers=AUTH)

    response = await client.get("/metrics", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    found = samples(await response.text())
    assert count(found, "GET", "health", "200") == 3
    assert count(found, "POST", "echo", "200") == 1
    assert count(found, "POST", "echo", "422") == 1
    assert count(found, "POST", "echo", "401") == 1
    assert count(found, "GET", "unmatched", "404") == 1  # never the raw path
    assert count(found, "OTHER", "unmatched", "405") == 1  # nor arbitrary methods
    histogram = (
        "twin_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "health")),
    )
    assert found[histogram] == 3
    assert "/random/path" not in await response.text()


async def test_metrics_registry_is_per_app(make_client) -> None:
    first, second = await make_client(), await make_client()
    await first.get("/health")
    assert first.server.app[METRICS].registry is not second.server.app[METRICS].registry
    found = samples(await (await second.get("/metrics", headers=AUTH)).text())
    assert count(found, "GET", "health", "200") == 0


async def test_metrics_speak_openmetrics_when_asked(client) -> None:
    response = await client.get(
        "/metrics", headers={**AUTH, "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await response.text()).rstrip().endswith("# EOF")


def preflight(method: str = "POST", origin: str = ORIGIN) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_preflight_from_an_allowed_origin(make_client) -> None:
    client = await make_client(cors_origins=[ORIGIN])
    response = await client.options("/echo", headers=preflight())
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed == {"authorization", "content-type"}
    assert "X-Request-ID" in response.headers


async def test_actual_cors_request_exposes_request_id_and_rate_limit_headers(make_client) -> None:
    client = await make_client(cors_origins=[ORIGIN])
    response = await client.post(
        "/echo", json={"message": "hi"}, headers={**AUTH, "Origin": ORIGIN}
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = set(response.headers["Access-Control-Expose-Headers"].split(","))
    assert exposed == {
        "X-Request-ID",
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    assert "Origin" in response.headers.getall("Vary")

    # Errors carry the CORS headers too, so the frontend can read them.
    denied = await client.post("/echo", json={"message": "hi"}, headers={"Origin": ORIGIN})
    assert denied.status == 401
    assert denied.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_preflight_from_another_origin_gets_no_cors_headers(make_client) -> None:
    client = await make_client(cors_origins=[ORIGIN])
    response = await client.options("/echo", headers=preflight(origin="https://evil.example.test"))
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert_error(await response.json(), "forbidden", response.headers["X-Request-ID"])

    actual = await client.post(
        "/echo", json={"message": "hi"}, headers={**AUTH, "Origin": "https://evil.example.test"}
    )
    assert "Access-Control-Allow-Origin" not in actual.headers


async def test_preflight_for_a_method_the_route_lacks_is_refused(make_client) -> None:
    client = await make_client(cors_origins=[ORIGIN])
    response = await client.options("/echo", headers=preflight(method="DELETE"))
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_no_cors_without_configured_origins(client) -> None:
    response = await client.options("/echo", headers=preflight())
    assert response.status in (401, 405)  # no preflight route: it is just another request
    assert "Access-Control-Allow-Origin" not in response.headers
    actual = await client.post("/echo", json={"message": "hi"}, headers={**AUTH, "Origin": ORIGIN})
    assert actual.status == 200
    assert not any(h.lower().startswith("access-control-") for h in actual.headers)
