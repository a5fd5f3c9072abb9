"""Bearer tokens on everything but GET /health, /docs and CORS preflights; fail closed."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import AUTH, OTHER_TOKEN, TOKEN, assert_error
from twin.api.auth import token_matches

PROTECTED = [
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/echo"),
    ("GET", "/no/such/route"),  # unknown paths do not reveal that they are unknown
    ("POST", "/health"),  # nor do wrong methods on public routes
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_missing_token_is_401(client, method: str, path: str) -> None:
    response = await client.request(method, path, json={"message": "hi"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(await response.json(), "unauthorized", response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("header", "sent"),
    [
        ("Bearer wrong-token-value-xyz", "wrong-token-value-xyz"),
        (f"Bearer {TOKEN}x", f"{TOKEN}x"),
        (f"Bearer {TOKEN[:-1]}", TOKEN[:-1]),
        (f"Basic {TOKEN}", TOKEN),
        (TOKEN, TOKEN),
        ("Bearer ", None),
        ("Bearer \u00fc\u00f1\u00ee-not-ascii", "-not-ascii"),
    ],
)
async def test_wrong_token_is_401_and_never_echoed(client, header: str, sent: str | None) -> None:
    response = await client.post("/echo", json={"message": "hi"}, headers={"Authorization": header})
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")
    echoed = await response.text() + str(response.headers)
    assert TOKEN not in echoed
    assert sent is None or sent not in echoed


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
async def test_every_configured_token_is_accepted(client, token: str) -> None:
    response = await client.post(
        "/echo", json={"message": "hi"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200


async def test_scheme_is_case_insensitive(client) -> None:
    response = await client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status == 200


@pytest.mark.parametrize("path", ["/health", "/docs", "/docs/static/swagger-ui.css"])
async def test_public_paths_need_no_token(client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert "X-Request-ID" in response.headers


async def test_no_configured_token_fails_closed_with_503(
    make_client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="twin.api.auth"):
        client = await make_client(tokens=[])
    assert "TWIN_API__TOKENS" in caplog.text  # warned at start-up

    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 503
        error = assert_error(await response.json(), "unavailable")
        assert "TWIN_API__TOKENS" in error["message"]
    assert (await client.get("/health")).status == 200


async def test_blank_tokens_do_not_count(make_client) -> None:
    client = await make_client(tokens=["  "])
    response = await client.get("/metrics", headers={"Authorization": "Bearer   "})
    assert response.status == 503


async def test_short_tokens_are_warned_about(make_client, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="twin.api.auth"):
        await make_client(tokens=["short"])
    assert "shorter than" in caplog.text
    assert "short" not in caplog.text.replace("shorter", "")  # the token itself is not logged


def test_token_comparison() -> None:
    tokens = [TOKEN.encode(), OTHER_TOKEN.encode()]
    assert token_matches(TOKEN, tokens)
    assert token_matches(OTHER_TOKEN, tokens)
    assert not token_matches(TOKEN + " ", tokens)
    assert not token_matches("", tokens)
    assert not token_matches("\udcff", tokens)
    assert not token_matches(TOKEN, [])
