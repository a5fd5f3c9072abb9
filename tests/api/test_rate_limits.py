"""The per-token rate limit of the API: headers, 429 + Retry-After, per token, moving windows
(time injected), public endpoints exempt, 0 disables it, refusals counted in /metrics."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH, OTHER_TOKEN, TOKEN, assert_error
from twin.api.auth import fingerprint
from twin.api.ratelimit import RATE_LIMITS, client_address

OTHER = {"Authorization": f"Bearer {OTHER_TOKEN}"}
START = 1_800_000_000.0


class FakeTime:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def limited(make_client):
    """A client of an app allowing 3 requests per token per 60 s, on a clock the test moves."""
    client = await make_client(rate_limit_requests=3, rate_limit_seconds=60)
    clock = FakeTime()
    client.app[RATE_LIMITS].now = clock
    return client, clock


def limit_headers(response) -> tuple[str, str, str]:
    headers = response.headers
    return (
        headers["X-RateLimit-Limit"],
        headers["X-RateLimit-Remaining"],
        headers["X-RateLimit-Reset"],
    )


async def test_headers_count_down_then_429_with_retry_after(limited) -> None:
    client, clock = limited
    seen = []
    for _ in range(3):
        response = await client.get("/openapi.json", headers=AUTH)
        assert response.status == 200
        seen.append(limit_headers(response))
        clock.now += 10
    reset = str(int(START + 60))  # Unix time when the first request leaves the window
    assert seen == [("3", "2", reset), ("3", "1", reset), ("3", "0", reset)]

    refused = await client.get("/openapi.json", headers=AUTH)  # at START + 30
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "30"
    assert limit_headers(refused) == ("3", "0", reset)
    error = assert_error(await refused.json(), "rate_limited", refused.headers["X-Request-ID"])
    assert "at most 3 per 60 s" in error["message"]


async def test_the_window_moves_on(limited) -> None:
    client, clock = limited
    for _ in range(3):
        assert (await client.get("/openapi.json", headers=AUTH)).status == 200
        clock.now += 10  # requests at 0, 10, 20
    assert (await client.get("/openapi.json", headers=AUTH)).status == 429
    clock.now = START + 60  # the first request has left the window; refusals never counted
    again = await client.get("/openapi.json", headers=AUTH)
    assert again.status == 200
    assert limit_headers(again) == ("3", "0", str(int(START + 70)))
    clock.now = START + 200
    fresh = await client.get("/openapi.json", headers=AUTH)
    assert limit_headers(fresh)[:2] == ("3", "2")


async def test_each_token_has_its_own_budget(limited) -> None:
    client, _ = limited
    for _ in range(3):
        await client.get("/openapi.json", headers=AUTH)
    assert (await client.get("/openapi.json", headers=AUTH)).status == 429
    other = await client.get("/openapi.json", headers=OTHER)
    assert other.status == 200 and other.headers["X-RateLimit-Remaining"] == "2"


async def test_every_authenticated_answer_counts_and_carries_the_headers(limited) -> None:
    client, _ = limited
    missing = await client.get("/no/such/thing", headers=AUTH)  # a 404 after auth
    assert missing.status == 404 and missing.headers["X-RateLimit-Remaining"] == "2"
    invalid = await client.post("/echo", json={"message": ""}, headers=AUTH)  # a 422
    assert invalid.status == 422 and invalid.headers["X-RateLimit-Remaining"] == "1"


async def test_unauthenticated_and_public_requests_are_not_counted(limited) -> None:
    client, _ = limited
    for _ in range(5):
        health = await client.get("/health")
        assert health.status == 200 and "X-RateLimit-Limit" not in health.headers
        docs = await client.get("/docs")
        assert docs.status == 200 and "X-RateLimit-Limit" not in docs.headers
        denied = await client.get("/openapi.json", headers={"Authorization": "Bearer wrong"})
        assert denied.status == 401 and "X-RateLimit-Limit" not in denied.headers
    response = await client.get("/openapi.json", headers=AUTH)
    assert response.headers["X-RateLimit-Remaining"] == "2"


async def test_zero_disables_the_limit(make_client) -> None:
    client = await make_client(rate_limit_requests=0)
    for _ in range(20):
        response = await client.get("/openapi.json", headers=AUTH)
        assert response.status == 200 and "X-RateLimit-Limit" not in response.headers


async def test_refusals_are_counted_in_metrics(limited) -> None:
    client, _ = limited
    for _ in range(5):
        await client.post("/echo", json={"message": "hi"}, headers=OTHER)
    metrics = await (await client.get("/metrics", headers=AUTH)).text()
    assert 'twin_http_rate_limited_total{limit="token"} 2.0' in metrics
    assert 'status="429"' in metrics


async def test_default_limit_is_generous(make_client) -> None:
    client = await make_client()
    response = await client.get("/openapi.json", headers=AUTH)
    assert limit_headers(response)[:2] == ("600", "599")


def test_tokens_are_known_by_a_fingerprint_only() -> None:
    name = fingerprint(TOKEN.encode())
    assert len(name) == 16 and TOKEN not in name and name == fingerprint(TOKEN.encode())
    assert name != fingerprint(OTHER_TOKEN.encode())


async def test_the_window_keys_hold_no_token_in_clear(limited) -> None:
    client, _ = limited
    await client.get("/openapi.json", headers=AUTH)
    keys = list(client.app[RATE_LIMITS].windows._windows["token"]._hits)
    assert keys == [fingerprint(TOKEN.encode())]


class _Request:
    def __init__(self, remote: str, forwarded: list[str]) -> None:
        from multidict import CIMultiDict

        self.remote = remote
        self.headers = CIMultiDict([("X-Forwarded-For", value) for value in forwarded])


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], [], "203.0.113.9"),  # no proxy configured
        ("203.0.113.9", ["198.51.100.1"], ["10.0.0.0/8"], "203.0.113.9"),  # not from a proxy
        ("10.0.0.2", ["198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        # A client's own X-Forwarded-For is to the left of what the proxy appended.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.0.0.7"], ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),
        ("::1", ["2001:db8::5"], ["::1"], "2001:db8::5"),
    ],
)
def test_client_address(remote, forwarded, trusted, client) -> None:
    import ipaddress

    networks = [ipaddress.ip_network(entry) for entry in trusted]
    assert client_address(_Request(remote, forwarded), networks) == client  # type: ignore[arg-type]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    from twin.config import load_settings
    from twin.errors import ConfigError

    settings = load_settings(None, api={"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]})
    assert settings.api.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    with pytest.raises(ConfigError, match=r"api\.trusted_proxies"):
        load_settings(None, api={"trusted_proxies": ["proxy.example.com"]})
