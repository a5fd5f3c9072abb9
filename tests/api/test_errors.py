"""One error shape for every error, X-Request-ID on every response, domain errors mapped once."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from tests.api.conftest import AUTH, assert_error
from twin import errors
from twin.api.errors import ErrorResponse
from twin.api.validation import RouteTable

SECRET_DETAIL = "password=hunter2 at /srv/twin/secret.py line 42"

failing = RouteTable()


@failing.get("/test/boom", name="test_boom")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError(SECRET_DETAIL)


@failing.get("/test/domain/{kind}", name="test_domain")
async def domain_error(request: web.Request) -> web.Response:
    raise {
        "not_found": errors.NotFound("no chat 42"),
        "conflict": errors.Conflict("no pending login for this phone"),
        "invalid_input": errors.InvalidInput("code", "the login code is wrong"),
        "policy": errors.PolicyError("replies are paused in this chat"),
        "not_logged_in": errors.Unauthorized("the account is not logged in"),
        "rate_limited": errors.RateLimited("slow down", retry_after=2.2),
        "rate_limited_unknown": errors.RateLimited("slow down"),
        "telegram": errors.TelegramUnavailable("Telegram is unreachable"),
        "adapter": errors.AdapterError(SECRET_DETAIL),
        "config": errors.ConfigError([SECRET_DETAIL]),
    }[request.match_info["kind"]]


@failing.get("/test/http_error", name="test_http_error")
async def http_error(request: web.Request) -> web.Response:
    raise web.HTTPForbidden(text="custom reason")


@failing.get("/test/redirect", name="test_redirect")
async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/health")


async def test_unknown_route_is_404_in_the_error_shape(client) -> None:
    response = await client.get("/no/such/thing", headers=AUTH)
    assert response.status == 404
    body = await response.json()
    assert_error(body, "not_found", request_id=response.headers["X-Request-ID"])
    ErrorResponse.model_validate(body)  # the schema published in /openapi.json


async def test_wrong_method_is_405_with_allow_header(client) -> None:
    response = await client.delete("/echo", headers=AUTH)
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert_error(await response.json(), "method_not_allowed", response.headers["X-Request-ID"])


async def test_sane_incoming_request_id_is_honoured(client) -> None:
    rid = "frontend-1234.abc_DEF"
    response = await client.get("/no/such/thing", headers={**AUTH, "X-Request-ID": rid})
    assert response.headers["X-Request-ID"] == rid
    assert (await response.json())["error"]["request_id"] == rid


@pytest.mark.parametrize(
    "hostile",
    ["x" * 65, "a b", "id;drop", "<script>", "ünïcode", "line\tbreak", "../../etc"],
)
async def test_hostile_request_id_is_replaced(client, hostile: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": hostile})
    rid = response.headers["X-Request-ID"]
    assert rid != hostile
    assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid)  # uuid4 hex


async def test_request_ids_are_unique_per_request(client) -> None:
    ids = {(await client.get("/health")).headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


async def test_unexpected_exception_is_a_generic_500_and_logged_with_traceback(
    make_client, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(routes=failing)
    with caplog.at_level(logging.ERROR, logger="twin.api"):
        response = await client.get("/test/boom", headers=AUTH)
    assert response.status == 500
    rid = response.headers["X-Request-ID"]
    text = await response.text()
    error = assert_error(await response.json(), "internal_error", request_id=rid)
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert rid in error["message"] or "request id" in error["message"]

    [record] = [r for r in caplog.records if r.name == "twin.api"]
    assert record.request_id == rid
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert (
        "Traceback" in caplog.text and SECRET_DETAIL in caplog.text and "/test/boom" in caplog.text
    )


@pytest.mark.parametrize(
    ("kind", "status", "type_"),
    [
        ("not_found", 404, "not_found"),
        ("conflict", 409, "conflict"),
        ("invalid_input", 422, "validation_error"),
        ("policy", 403, "forbidden"),
        ("not_logged_in", 401, "not_logged_in"),
        ("rate_limited", 429, "rate_limited"),
        ("telegram", 503, "unavailable"),
        ("adapter", 503, "unavailable"),
        ("config", 500, "internal_error"),
    ],
)
async def test_domain_errors_map_to_statuses(
    make_client, kind: str, status: int, type_: str
) -> None:
    client = await make_client(routes=failing)
    response = await client.get(f"/test/domain/{kind}", headers=AUTH)
    assert response.status == status
    assert_error(await response.json(), type_, response.headers["X-Request-ID"])
    # Vendor detail of adapter failures and bugs stays in the log.
    assert "hunter2" not in await response.text()


async def test_rate_limited_sends_retry_after_in_whole_seconds(make_client) -> None:
    client = await make_client(routes=failing)
    response = await client.get("/test/domain/rate_limited", headers=AUTH)
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"  # 2.2 s rounded up
    error = assert_error(await response.json(), "rate_limited")
    assert error["message"] == "slow down"

    unknown = await client.get("/test/domain/rate_limited_unknown", headers=AUTH)
    assert unknown.status == 429 and "Retry-After" not in unknown.headers


async def test_domain_message_is_passed_on(make_client) -> None:
    client = await make_client(routes=failing)
    response = await client.get("/test/domain/not_found", headers=AUTH)
    assert (await response.json())["error"]["message"] == "no chat 42"

    invalid = await client.get("/test/domain/invalid_input", headers=AUTH)
    details = (await invalid.json())["error"]["details"]
    assert details == [{"field": "code", "error": "the login code is wrong"}]


async def test_aiohttp_http_exceptions_are_converted(make_client) -> None:
    client = await make_client(routes=failing)
    response = await client.get("/test/http_error", headers=AUTH)
    assert response.status == 403
    error = assert_error(await response.json(), "forbidden")
    assert error["message"] == "custom reason"


async def test_redirects_are_not_errors(make_client) -> None:
    client = await make_client(routes=failing)
    response = await client.get("/test/redirect", headers=AUTH, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/health"
    assert "X-Request-ID" in response.headers


async def test_head_of_an_error_has_no_body_but_keeps_headers(client) -> None:
    response = await client.head("/no/such/thing", headers=AUTH)
    assert response.status == 404
    assert "X-Request-ID" in response.headers
    assert await response.read() == b""
