"""The API's rate limits when several processes share one PostgreSQL (issue 20): a client that
spreads its requests over two apps meets one limit per token, one login limit per account and
address; while the database cannot be reached a process counts in its own memory. The windows
in the database answer exactly as the in-memory ones (SQLite and PostgreSQL)."""

from __future__ import annotations

import random

import pytest

from tests.api.conftest import AUTH, OTHER_TOKEN, TOKEN, assert_error
from tests.api.test_control import control_settings
from tests.api.test_rate_limits import START, FakeTime, limit_headers
from tests.db.conftest import (  # noqa: F401  (fixtures)
    backend_url,
    db,
    engine_url,
    make_settings,
    migrated_postgres,
    migrated_url,
    postgres_url,
    repo,
)
from twin.api.forwarding import FORWARDING, HEADER, signature
from twin.api.ratelimit import RATE_LIMITS, LocalWindows, SharedWindows
from twin.db.engine import database
from twin.domain.throttle import MovingWindow, Quota

OTHER = {"Authorization": f"Bearer {OTHER_TOKEN}"}


@pytest.fixture
async def two_apps(make_client, migrated_postgres, tmp_path):  # noqa: F811
    """Two apps ("processes") on one PostgreSQL, on one clock the test moves."""
    clock = FakeTime()
    clients = []
    for name in ("a", "b"):
        settings = control_settings(
            migrated_postgres,
            tmp_path / name,
            api={
                "tokens": [TOKEN, OTHER_TOKEN],
                "cors_origins": [],
                "rate_limit_requests": 3,
                "rate_limit_seconds": 60,
                "login_attempts": 2,
                "login_window_seconds": 900,
            },
        )
        (tmp_path / name).mkdir()
        client = await make_client(settings=settings, real_database=True)
        client.app[RATE_LIMITS].now = clock
        assert isinstance(client.app[RATE_LIMITS].windows, SharedWindows)
        clients.append(client)
    return clients[0], clients[1], clock


async def test_one_token_limit_across_processes(two_apps) -> None:
    a, b, clock = two_apps
    seen = []
    for client in (a, b, a):
        response = await client.get("/openapi.json", headers=AUTH)
        assert response.status == 200
        seen.append(limit_headers(response))
        clock.now += 10
    reset = str(int(START + 60))
    assert seen == [("3", "2", reset), ("3", "1", reset), ("3", "0", reset)]
    refused = await b.get("/openapi.json", headers=AUTH)  # B alone has seen one request
    assert refused.status == 429 and refused.headers["Retry-After"] == "30"
    assert_error(await refused.json(), "rate_limited")
    other = await b.get("/openapi.json", headers=OTHER)  # another token: its own window
    assert other.status == 200 and limit_headers(other)[1] == "2"
    clock.now = START + 60  # the first request leaves the window, on both processes
    assert (await b.get("/openapi.json", headers=AUTH)).status == 200
    assert (await a.get("/openapi.json", headers=AUTH)).status == 429


async def test_login_attempts_count_across_processes(two_apps) -> None:
    a, b, clock = two_apps
    for client in (a, b):  # two wrong keys, one at each process
        response = await client.post("/app/session", json={"key": "wrong"})
        assert response.status == 401
    for client in (a, b):  # the right key is refused too: the address has no attempt left
        response = await client.post("/app/session", json={"key": TOKEN})
        assert response.status == 429
        assert "Too many login attempts" in (await response.json())["error"]["message"]
    clock.now += 901
    assert (await b.post("/app/session", json={"key": TOKEN})).status == 201


async def test_an_unreachable_database_counts_in_memory(caplog, tmp_path) -> None:
    """A process whose database is out still limits (its own requests), and says so once."""
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:9/none", tmp_path)
    quota = Quota(2, 60)
    async with database(settings) as down:
        windows = SharedWindows(down.repo)
        verdicts = [
            (await windows.hit_all([("token", quota, "t")], START + i))[0] for i in range(3)
        ]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert [v.remaining for v in verdicts] == [1, 0, 0]
    warnings = [r for r in caplog.records if "counted in this process alone" in r.message]
    assert len(warnings) == 1


async def test_database_windows_answer_as_the_memory_ones(repo) -> None:  # noqa: F811
    """Random hits and resets on three keys: the database's verdicts equal MovingWindow's,
    step by step (SQLite and PostgreSQL)."""
    rng = random.Random(20)
    quota = Quota(4, 30.0)
    memory = MovingWindow(quota)
    windows = SharedWindows(repo)
    now = START
    for _ in range(120):
        now += rng.choice([0.0, 0.5, 3.0, 9.0, 31.0])
        key = rng.choice(["x", "y", ("scope", "z")])
        if rng.random() < 0.1:
            memory.reset(key)
            await windows.reset("login_account", key)
            continue
        expected = memory.hit(key, now)
        [got] = await windows.hit_all([("login_account", quota, key)], now)
        assert (got.allowed, got.remaining) == (expected.allowed, expected.remaining)
        assert got.reset_after == pytest.approx(expected.reset_after)
    # rows of keys idle for a whole window go with the sweep
    assert await repo.rate_sweep(now + 31) >= 1
    assert await repo.rate_sweep(now + 31) == 0


@pytest.mark.parametrize("store", ["memory", "database"])
async def test_two_windows_are_counted_together_or_not_at_all(repo, store) -> None:  # noqa: F811
    """A login counts against its account and its address in one step: when either is full,
    neither is counted (the address of a refused attempt keeps its room)."""
    windows = LocalWindows() if store == "memory" else SharedWindows(repo)
    small, large = Quota(1, 60.0), Quota(3, 60.0)
    both = [("login_account", small, ("verify_code", "ann")), ("login_address", large, "1.2.3.4")]
    first = await windows.hit_all(both, START)
    assert [v.allowed for v in first] == [True, True] and first[1].remaining == 2
    refused = await windows.hit_all(both, START + 1)  # the account is full
    assert [v.allowed for v in refused] == [False, True]
    other = [("login_account", small, ("verify_code", "bob")), both[1]]
    counted = await windows.hit_all(other, START + 2)  # the address had not been counted again
    assert [v.allowed for v in counted] == [True, True] and counted[1].remaining == 1


async def test_a_request_another_process_forwarded_is_counted_once(two_apps) -> None:
    """Counted where it was received: the process it is forwarded to (twin.api.forwarding)
    does not count it again — only when the signature is the cluster's."""
    a, b, _clock = two_apps
    forwarding = b.app[FORWARDING]
    signed = signature(forwarding.key, "GET", "/openapi.json", forwarding.me, b"", forwarding.now())
    response = await b.get("/openapi.json", headers={**AUTH, HEADER: signed})
    assert response.status == 200 and "X-RateLimit-Limit" not in response.headers
    for _ in range(5):  # over the limit of 3, were they counted (each signature once)
        forwarding.now = lambda last=forwarding.now: last() + 1
        signed = signature(
            forwarding.key, "GET", "/openapi.json", forwarding.me, b"", forwarding.now()
        )
        response = await b.get("/openapi.json", headers={**AUTH, HEADER: signed})
        assert response.status == 200 and "X-RateLimit-Limit" not in response.headers
    forged = signature(b"not the cluster's key", "GET", "/openapi.json", forwarding.me, b"", 0)
    response = await a.get("/openapi.json", headers={**AUTH, HEADER: forged})
    assert limit_headers(response)[:2] == ("3", "2")
