"""Login attempts are limited per account and per client address (api.login_attempts per
api.login_window_seconds, default 5 per 15 minutes), against the sandbox's real login flow; the
limiter's clock is replaced so that a window can pass without waiting."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AUTH, OWNER_PHONE
from twin.api.ratelimit import RATE_LIMITS

pytestmark = pytest.mark.e2e

PHONE = "+" + OWNER_PHONE
START = 1_800_000_000.0


class FakeTime:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


async def start(sandbox, make_daemon, **api):
    sandbox.create_user(OWNER_PHONE, "Olga", password=api.pop("password", None))
    daemon = await make_daemon(api=api) if api else await make_daemon()
    clock = FakeTime()
    daemon.app[RATE_LIMITS].now = clock
    return daemon, clock


async def post(daemon, path: str, body: dict, address: str | None = None):
    headers = dict(AUTH)
    if address is not None:
        headers["X-Forwarded-For"] = address
    response = await daemon.client.post(path, json=body, headers=headers)
    return response, await response.json()


async def verify(daemon, code: str, address: str | None = None, **extra):
    return await post(daemon, "/auth/verify_code", {"phone": PHONE, "code": code, **extra}, address)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 100000:05d}"


async def test_the_sixth_wrong_code_is_refused_until_the_window_has_passed(sandbox, make_daemon):
    daemon, clock = await start(sandbox, make_daemon)
    response, _ = await post(daemon, "/auth/request_code", {"phone": PHONE})
    assert response.status == 200
    code = sandbox.last_code(OWNER_PHONE)
    for _ in range(5):
        response, body = await verify(daemon, wrong(code))
        assert response.status == 422, body
        clock.now += 60

    response, body = await verify(daemon, code)
    assert response.status == 429  # even the right code: the attempt never reaches Telegram
    assert body["error"]["type"] == "rate_limited"
    assert "account 'default'" in body["error"]["message"]
    assert response.headers["Retry-After"] == str(900 - 5 * 60)  # the first attempt leaves then
    assert set(body["error"]) == {"type", "message", "details", "request_id"}

    clock.now = START + 900  # the first wrong code has left the window
    response, body = await verify(daemon, code)
    assert response.status == 200 and body["status"] == "authorized"

    metrics = await (await daemon.client.get("/metrics", headers=AUTH)).text()
    assert 'twin_http_rate_limited_total{limit="login_account"} 1.0' in metrics


async def test_one_address_is_limited_across_accounts(sandbox, make_daemon):
    daemon, _ = await start(sandbox, make_daemon)
    await post(daemon, "/auth/request_code", {"phone": PHONE})
    code = sandbox.last_code(OWNER_PHONE)
    for _ in range(5):
        response, _ = await verify(daemon, wrong(code))
        assert response.status == 422
    # Another account's first attempt, from the same address: the address has none left.
    response, body = await verify(daemon, code, account="second")
    assert response.status == 429 and "from this address" in body["error"]["message"]
    assert int(response.headers["Retry-After"]) > 0


async def test_one_account_is_limited_across_addresses(sandbox, make_daemon):
    # Behind a trusted proxy each attempt comes from another client address.
    daemon, _ = await start(sandbox, make_daemon, trusted_proxies=["127.0.0.1"])
    await post(daemon, "/auth/request_code", {"phone": PHONE}, address="198.51.100.1")
    code = sandbox.last_code(OWNER_PHONE)
    for i in range(5):
        response, _ = await verify(daemon, wrong(code), f"198.51.100.{i}")
        assert response.status == 422
    response, body = await verify(daemon, code, "198.51.100.99")
    assert response.status == 429 and "account 'default'" in body["error"]["message"]


async def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(sandbox, make_daemon):
    daemon, _ = await start(sandbox, make_daemon)
    await post(daemon, "/auth/request_code", {"phone": PHONE})
    code = sandbox.last_code(OWNER_PHONE)
    for i in range(5):
        await verify(daemon, wrong(code), f"10.1.0.{i}")
    # A made-up X-Forwarded-For does not get a client a fresh address.
    response, body = await verify(daemon, code, "10.9.9.9", account="second")
    assert response.status == 429 and "from this address" in body["error"]["message"]


async def test_a_completed_login_clears_the_accounts_attempts(sandbox, make_daemon):
    daemon, _ = await start(sandbox, make_daemon, trusted_proxies=["127.0.0.1"])
    await post(daemon, "/auth/request_code", {"phone": PHONE}, "198.51.100.1")
    code = sandbox.last_code(OWNER_PHONE)
    for _ in range(4):
        await verify(daemon, wrong(code), "198.51.100.1")
    response, _ = await verify(daemon, code, "198.51.100.1")
    assert response.status == 200
    response, _ = await post(daemon, "/auth/logout", {}, "198.51.100.1")
    assert response.status == 200

    # From another address, the account has its five attempts again.
    await post(daemon, "/auth/request_code", {"phone": PHONE}, "198.51.100.2")
    code = sandbox.last_code(OWNER_PHONE)
    for _ in range(5):
        response, body = await verify(daemon, wrong(code), "198.51.100.2")
        assert response.status == 422, body
    response, _ = await verify(daemon, code, "198.51.100.2")
    assert response.status == 429


async def test_two_step_passwords_are_limited_too(sandbox, make_daemon):
    daemon, _ = await start(sandbox, make_daemon, password="correct horse")
    await post(daemon, "/auth/request_code", {"phone": PHONE})
    response, body = await verify(daemon, sandbox.last_code(OWNER_PHONE))
    assert body["status"] == "password_required"
    for _ in range(5):
        response, _ = await post(daemon, "/auth/password", {"password": "guess"})
        assert response.status == 422
    response, body = await post(daemon, "/auth/password", {"password": "correct horse"})
    assert response.status == 429 and body["error"]["type"] == "rate_limited"


async def test_code_requests_are_limited(sandbox, make_daemon):
    daemon, _ = await start(sandbox, make_daemon, login_attempts=2)
    for _ in range(2):
        response, _ = await post(daemon, "/auth/request_code", {"phone": PHONE})
        assert response.status == 200
    response, _ = await post(daemon, "/auth/request_code", {"phone": PHONE})
    assert response.status == 429


async def test_zero_turns_the_login_limit_off(sandbox, make_daemon):
    daemon, _ = await start(sandbox, make_daemon, login_attempts=0)
    await post(daemon, "/auth/request_code", {"phone": PHONE})
    code = sandbox.last_code(OWNER_PHONE)
    for _ in range(8):
        response, _ = await verify(daemon, wrong(code))
        assert response.status == 422
