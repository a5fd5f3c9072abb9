"""API keys on the HTTP channels (issue 14, item 4): a chat key bound to another account than
the channel instance's gets 404, one bound to another twin 403; on the TalkMe webhook such keys
prove nothing (401). Real HTTP, the real OpenAI SDK against the fake server, SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.channels.test_http_chat import AUTH, answer
from tests.channels.test_talkme import Start, call, daemon, say  # noqa: F401  (a fixture)
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin import keys


async def make_key(client: TestClient, name: str, scope: str, **binding: Any) -> str:
    response = await client.post(
        "/keys", json={"name": name, "scopes": [scope], **binding}, headers=AUTH
    )
    assert response.status == 201, await response.text()
    return (await response.json())["key"]


async def test_chat_keys_are_held_to_their_account_and_twin(
    daemon: Start,  # noqa: F811
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.respond_with(lambda body: answer("ok"))
    client = await daemon()
    first = await client.post("/api/chat", json={"message": "hi"}, headers=AUTH)
    assert first.status == 200  # the channel instance `chat` exists from now on
    await client.app[keys.DATABASE].repo.get_or_create_account("shop")
    assert (await client.post("/twins", json={"name": "sales"}, headers=AUTH)).status == 201
    allowed = {
        "instance": await make_key(client, "instance", "chat", account="chat"),
        "default-twin": await make_key(client, "default-twin", "chat", twin="default"),
    }
    shop = await make_key(client, "shop", "chat", account="shop")
    sales = await make_key(client, "sales", "chat", twin="sales")
    requests = len(fake_openai.chat_requests)
    for key in allowed.values():
        said = await client.post("/api/chat", json={"message": "hi"}, headers={"X-API-Key": key})
        assert said.status == 200, await said.text()
    assert len(fake_openai.chat_requests) == requests + 2
    other_account = await client.post(
        "/api/chat", json={"message": "hi"}, headers={"X-API-Key": shop}
    )
    assert other_account.status == 404
    assert (await other_account.json())["error"]["type"] == "not_found"
    other_twin = await client.post(
        "/api/chat/stream", json={"message": "hi"}, headers={"Authorization": f"Bearer {sales}"}
    )
    assert other_twin.status == 403
    assert (await other_twin.json())["error"]["type"] == "forbidden"
    assert len(fake_openai.chat_requests) == requests + 2  # nothing generated for those


async def test_talkme_keys_are_held_to_their_account_and_twin(
    daemon: Start,  # noqa: F811
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.respond_with(lambda body: answer("ok"))
    client = await daemon()
    assert (await say(client, call("hi")))["message"].endswith("ok")  # the shared secret
    await client.app[keys.DATABASE].repo.get_or_create_account("shop")
    assert (await client.post("/twins", json={"name": "sales"}, headers=AUTH)).status == 201
    bound_here = await make_key(client, "here", "webhook:talkme", account="talkme")
    other_account = await make_key(client, "shop", "webhook:talkme", account="shop")
    other_twin = await make_key(client, "sales", "webhook:talkme", twin="sales")
    passed = await say(client, call("again"), headers={"X-API-Key": bound_here})
    assert passed["message"].endswith("ok")
    for key in (other_account, other_twin):
        refused = await client.post(
            "/webhook/talkme", json=call("hi"), headers={"X-API-Key": key}
        )
        assert refused.status == 401
