"""A key bound to an account (issue 14, item 4) over real HTTP into the real app, on SQLite
and PostgreSQL: another account's objects are 404 wherever an account is addressed, listings
hold only its own, endpoints spanning every account are 403; and rate limits count per key."""

from __future__ import annotations

import pytest

from tests.api.conftest import AUTH, assert_error
from tests.api.test_control import control_settings
from tests.api.test_events_sse import open_stream, read_event
from tests.api.test_keys import bearer, create
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys


@pytest.fixture
async def client(make_client, engine_url, tmp_path):  # noqa: F811
    settings = control_settings(engine_url, tmp_path)
    return await make_client(settings=settings, real_database=True)


@pytest.fixture
async def shop(client) -> str:
    """Accounts `shop` (chat 11) and `home` (chat 22); the key of an admin bound to `shop`."""
    repo = client.app[keys.DATABASE].repo
    for name, peer in (("shop", 11), ("home", 22)):
        account = await repo.get_or_create_account(name)
        await repo.upsert_chat(account.id, peer, kind="private", title=name)
    return (await create(client, name="shop-admin", scopes=["admin"], account="shop"))["key"]


async def not_found(response) -> None:
    assert response.status == 404, await response.text()
    assert_error(await response.json(), "not_found", response.headers["X-Request-ID"])


async def test_reads_of_another_account_are_404_and_listings_hold_only_its_own(
    client, shop
) -> None:
    as_shop = bearer(shop)
    chats = await client.get("/chats", headers=as_shop)  # no `account=`: its own, not `default`
    assert [c["id"] for c in (await chats.json())["chats"]] == [11]
    chats = await client.get("/chats?account=shop", headers=as_shop)
    assert [c["id"] for c in (await chats.json())["chats"]] == [11]
    accounts = await client.get("/accounts", headers=as_shop)
    assert [a["name"] for a in (await accounts.json())["accounts"]] == ["shop"]
    everyone = await client.get("/accounts", headers=AUTH)
    assert {a["name"] for a in (await everyone.json())["accounts"]} >= {"shop", "home"}
    settings = await client.get("/settings", headers=as_shop)
    assert settings.status == 200 and (await settings.json())["account"] == "shop"
    for path in (
        "/chats?account=home",
        "/settings?account=home",
        "/chats/22/settings?account=home",
        "/stats?account=home",
        "/style?account=home",
        "/auth/status?account=home",
        "/dialogs?account=home",
        "/messages?chat=22&account=home",
        "/chats?account=nobody",  # an account that does not exist answers the same
    ):
        await not_found(await client.get(path, headers=as_shop))


async def test_writes_to_another_account_are_404_and_change_nothing(client, shop) -> None:
    as_shop = bearer(shop)
    for method, path, body in (
        ("POST", "/chats/22/pause", {"account": "home", "minutes": 5}),
        ("POST", "/chats/22/resume", {"account": "home"}),
        ("PUT", "/settings", {"account": "home", "twin": {"persona": "x"}}),
        ("PUT", "/chats/22/settings", {"account": "home", "twin": {"persona": "x"}}),
        ("POST", "/twin/disable", {"account": "home"}),
        ("POST", "/replies/1/retry", {"account": "home"}),
        ("POST", "/send_message", {"account": "home", "chat": 22, "text": "hi"}),
        ("POST", "/auth/logout", {"account": "home"}),
        ("PUT", "/accounts/home", {"twin": "default"}),
    ):
        await not_found(await client.request(method, path, json=body, headers=as_shop))
    await not_found(await client.delete("/accounts/home", headers=as_shop))
    # Its own account, named or not, it may change.
    assert (await client.post("/chats/11/pause", json={}, headers=as_shop)).status == 200
    await not_found(await client.post("/chats/22/pause", json={}, headers=as_shop))
    home = await (await client.get("/chats?account=home", headers=AUTH)).json()
    shop_chats = await (await client.get("/chats?account=shop", headers=AUTH)).json()
    assert [c["paused"] for c in home["chats"]] == [False]
    assert [c["paused"] for c in shop_chats["chats"]] == [True]
    home_settings = await (await client.get("/settings?account=home", headers=AUTH)).json()
    assert home_settings["overrides"] == {}
    names = {a["name"] for a in (await (await client.get("/accounts", headers=AUTH)).json())[
        "accounts"]}
    assert "home" in names


async def test_endpoints_spanning_every_account_are_403(client, shop) -> None:
    as_shop = bearer(shop)
    for method, path, body in (
        ("GET", "/keys", None),
        ("POST", "/keys", {"name": "more", "scopes": ["admin"]}),
        ("DELETE", "/keys/shop-admin", None),
        ("GET", "/metrics", None),
        ("POST", "/twins", {"name": "sales"}),
        ("PUT", "/twins/default", {}),
        ("DELETE", "/twins/default", None),
    ):
        response = await client.request(method, path, json=body, headers=as_shop)
        assert response.status == 403, (method, path)
        error = assert_error(await response.json(), "forbidden", response.headers["X-Request-ID"])
        assert "bound to account 'shop'" in error["message"]
    # Nothing was created or revoked by those.
    listed = await (await client.get("/keys", headers=AUTH)).json()
    assert [(k["name"], k["revoked_at"]) for k in listed["keys"]] == [("shop-admin", None)]


async def test_a_bound_key_sees_only_the_twin_its_account_answers_as(client, shop) -> None:
    assert (await client.post("/twins", json={"name": "sales"}, headers=AUTH)).status == 201
    linked = await client.put("/accounts/home", json={"twin": "sales"}, headers=AUTH)
    assert linked.status == 200
    mine = await client.get("/twins", headers=bearer(shop))
    twins = (await mine.json())["twins"]
    assert [(t["name"], t["accounts"]) for t in twins] == [("default", ["shop"])]
    await not_found(await client.get("/twins/sales", headers=bearer(shop)))
    own = await client.get("/twins/default", headers=bearer(shop))
    assert (await own.json())["accounts"] == ["shop"]
    admin = await (await client.get("/twins/sales", headers=AUTH)).json()
    assert admin["accounts"] == ["home"]


async def test_a_bound_key_streams_only_its_account_events(client, shop) -> None:
    repo = client.app[keys.DATABASE].repo
    events = client.app[keys.EVENTS]
    start = await repo.last_event_id()
    ids = {name: (await repo.get_or_create_account(name)).id for name in ("shop", "home")}
    first = await events.emit("test.mine", {"n": 1}, account_id=ids["shop"])
    await events.emit("test.theirs", {"n": 2}, account_id=ids["home"])
    await events.emit("test.nobodys", {"n": 3})
    await events.emit("test.theirs", {"account": "home"})  # about an account by name
    second = await events.emit("test.mine", {"n": 4}, account_id=ids["shop"])
    response = await open_stream(client, headers=bearer(shop), last_event_id=str(start))
    got = [await read_event(response), await read_event(response)]
    assert [(m.id, m.event) for m in got] == [(str(first), "test.mine"), (str(second),
                                                                          "test.mine")]
    assert all(m.data is not None and m.data["account"] == "shop" for m in got)
    live = await events.emit("test.theirs", {"n": 5}, account_id=ids["home"])
    mine = await events.emit("test.mine", {"n": 6}, account_id=ids["shop"])
    assert (await read_event(response)).id == str(mine) != str(live)
    response.close()
    refused = await client.get(
        "/events", params={"account": "home"}, headers=bearer(shop)
    )
    await not_found(refused)
    # An unbound key may ask for one account's events.
    admin = await open_stream(client, account="home", last_event_id=str(start))
    assert (await read_event(admin)).event == "test.theirs"
    admin.close()


async def test_rate_limits_count_per_key(make_client, engine_url, tmp_path) -> None:  # noqa: F811
    settings = control_settings(
        engine_url, tmp_path,
        api={"tokens": [AUTH["Authorization"].removeprefix("Bearer ")], "cors_origins": [],
             "rate_limit_requests": 2, "rate_limit_seconds": 3600},
    )
    client = await make_client(settings=settings, real_database=True)
    one = (await create(client, name="one", scopes=["admin"]))["key"]
    two = (await create(client, name="two", scopes=["admin"]))["key"]
    for key in (one, two):  # each key has its own window
        seen = [await client.get("/accounts", headers=bearer(key)) for _ in range(3)]
        assert [r.status for r in seen] == [200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["1", "0", "0"]
    # The same key sent as X-API-Key is the same key: its window is full.
    assert (await client.get("/accounts", headers={"X-API-Key": one})).status == 429
