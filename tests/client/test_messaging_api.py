"""The messaging API through the Python client (issue 15, item 3): the platforms this daemon
really has, sending through the external messenger (its webhook queued with the turn), refusals
for what a platform cannot do, and a user's context kept per conversation and given to the
brain."""

from __future__ import annotations

import pytest

from tests.channels.test_http_chat import answer
from tests.client.test_client import server, twin  # noqa: F401  (fixtures)
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin.client import NotFound, TwinClient, ValidationFailed


async def test_only_the_real_platforms_are_listed(twin: TwinClient) -> None:  # noqa: F811
    platforms = (await twin.platforms()).platforms
    assert [(p.platform, p.name, p.status) for p in platforms] == [
        ("external", "external", "enabled"),
        ("http_chat", "chat", "enabled"),
        ("api", "api", "enabled"),  # TalkMe is off; no Telegram account logged in
    ]
    external = platforms[0].capabilities
    assert (external.send, external.inline_keyboard) == (True, False)
    assert platforms[1].capabilities.streaming is True


async def test_send_through_the_external_messenger_and_refusals(
    twin: TwinClient,  # noqa: F811
) -> None:
    sent = await twin.send("external", "tg:7", "Your order shipped.", message_type="operator")
    assert (sent.success, sent.delivery_status, sent.platform_message_id) == (
        True,
        "queued",
        None,
    )
    [queued] = (await twin.deliveries()).deliveries
    assert queued.payload["message_text"] == "Your order shipped."
    assert queued.payload["message_type"] == "operator" and queued.payload["thread_id"] == "tg:7"
    assert queued.payload["message_id"] == sent.message_id
    with pytest.raises(ValidationFailed, match="only in its own requests"):
        await twin.send("http_chat", "t-1", "hello")
    with pytest.raises(ValidationFailed, match="Inline keyboards"):
        await twin.send(
            "external", "tg:7", "Pick one", inline_keyboard=[[{"text": "A", "callback_data": "a"}]]
        )
    with pytest.raises(NotFound):
        await twin.send("telegram", "12345", "hi", account="nobody")
    with pytest.raises(ValidationFailed):
        await twin.send("telegram", "not-a-chat", "hi")  # an id, @username or +phone


async def test_a_users_context_is_kept_and_given_to_the_brain(
    twin: TwinClient,  # noqa: F811
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    with pytest.raises(NotFound):
        await twin.context("api", "s-1", "u-1")
    await twin.update_context("api", "s-1", "u-1", tier="gold", city="Berlin")
    merged = await twin.update_context("api", "s-1", "u-1", city=None, lang="de")
    assert merged.context == {"tier": "gold", "lang": "de"} and merged.state == "active"
    fake_openai.queue_reply(answer("Guten Tag!"))
    said = await twin.converse("Hallo", "u-1", "web", session_id="s-1")
    assert said.session_id == "s-1"
    system = next(m["content"] for m in fake_openai.last_messages if m["role"] == "system")
    assert "tier = gold" in system and "lang = de" in system and "Berlin" not in system
    assert (await twin.context("api", "s-1", "u-1")).context == {"tier": "gold", "lang": "de"}
    assert (await twin.context("api", "s-1", "someone-else")).context == {}
