"""The conversation API through the Python client (issue 15, item 3): sessions of a user, the
brain's judgement with each answer, the caller's context in the prompt, history pages, and a
session handed to a person (paused, the owner's event, the external channel's webhook)."""

from __future__ import annotations

import pytest

from tests.channels.test_http_chat import answer
from tests.client.test_client import server, twin  # noqa: F401  (fixtures)
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin.client import NotFound, TwinClient


def system_prompt(fake: FakeOpenAI) -> str:
    return next(m["content"] for m in fake.last_messages if m["role"] == "system")


async def test_sessions_answers_and_history(
    twin: TwinClient,  # noqa: F811
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(answer("We ship on Fridays.", intent="request", confidence=0.8))
    said = await twin.converse(
        "Do you ship to Berlin? Call me at +49 30 1234 5678",
        "u-1",
        "web",
        context={"name": "Anna", "plan": "premium"},
    )
    assert said.message == "We ship on Fridays." and said.session_id
    assert (said.intent, said.confidence, said.requires_human) == ("request", 0.8, False)
    assert [(e.type, e.value) for e in said.entities] == [("phone", "+493012345678")]
    assert said.current_state == "active"
    assert said.suggested_actions == ["save_contact", "follow_up"]
    prompt = system_prompt(fake_openai)
    assert "plan = premium" in prompt and "name = Anna" in prompt  # the caller's context

    fake_openai.queue_reply(answer("Bye!", intent="farewell", end_conversation=True))
    closing = await twin.converse("Thanks, bye", "u-1", "web", session_id=said.session_id)
    assert closing.current_state == "closed" and closing.suggested_actions == ["close_session"]
    fake_openai.queue_reply(answer("Hello again."))
    other = await twin.converse("Hi", "u-1", "telegram")
    assert other.session_id != said.session_id

    sessions = (await twin.sessions("u-1")).sessions
    assert [(s.session_id, s.platform, s.messages_count) for s in sessions] == [
        (other.session_id, "telegram", 2),
        (said.session_id, "web", 4),
    ]
    assert (await twin.sessions("nobody")).sessions == []

    page = await twin.history(said.session_id, limit=3, offset=0)
    assert (page.total, page.has_more) == (4, True)
    assert [(m.role, m.intent) for m in page.messages] == [
        ("user", None),
        ("assistant", "request"),
        ("user", None),
    ]
    rest = await twin.history(said.session_id, limit=3, offset=3)
    assert [m.content for m in rest.messages] == ["Bye!"] and rest.has_more is False
    with pytest.raises(NotFound):
        await twin.history("no-such-session")


async def test_escalate_pauses_the_session_and_fires_the_webhook(
    twin: TwinClient,  # noqa: F811
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(answer("Sure."))
    said = await twin.converse("I want to cancel my order", "u-2", "web")
    calls = len(fake_openai.chat_requests)
    escalated = await twin.escalate(said.session_id, "cancellation", "high", order="A-7")
    assert escalated.current_state == "escalated"
    paused = await twin.converse("Hello?", "u-2", "web", session_id=said.session_id)
    assert (paused.message, paused.current_state, paused.requires_human) == (
        "",
        "escalated",
        True,
    )
    assert len(fake_openai.chat_requests) == calls  # the model is not asked while paused
    [session] = (await twin.sessions("u-2")).sessions
    assert session.status == "escalated"
    [webhook] = (await twin.deliveries()).deliveries  # the external channel is on here
    assert webhook.payload["wh_type"] == "operator_requested"
    assert webhook.payload["thread_id"] == said.session_id
    assert (webhook.payload["reason"], webhook.payload["priority"]) == ("cancellation", "high")
    assert webhook.payload["context"] == {"order": "A-7"}
    with pytest.raises(NotFound):
        await twin.escalate("no-such-session", "x")


@pytest.fixture
async def limited(aiohttp_client, engine_url, tmp_path, fake_openai):  # noqa: F811
    from tests.channels.test_http_chat import TOKEN, chat_settings
    from twin.app import create_app

    settings = chat_settings(
        engine_url,
        tmp_path,
        fake_openai.base_url + "/v1",
        api={"tokens": [TOKEN], "conversation_per_minute": 2, "analytics_per_minute": 1},
    )
    app = await aiohttp_client(create_app(settings))
    async with TwinClient(str(app.make_url("")), TOKEN) as client:
        yield app, client


async def test_business_limits_per_user_and_per_key(
    limited,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    from tests.channels.test_http_chat import AUTH
    from twin.client import RateLimited

    app, client = limited
    fake_openai.respond_with(lambda body: answer("ok"))
    body = {"message": "hi", "user_id": "u-9", "platform": "web"}
    first = await app.post("/api/v1/conversation/chat", json=body, headers=AUTH)
    assert first.status == 200
    # the tighter limit shows: 2 per minute for this user, 1 left
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
        "2",
        "1",
    )
    await client.converse("again", "u-9", "web")
    with pytest.raises(RateLimited) as refused:
        await client.converse("and again", "u-9", "web")
    assert (
        refused.value.status == 429
        and refused.value.retry_after
        and "user_id" in str(refused.value)
    )
    assert (await client.converse("hello", "u-10", "web")).message == "ok"  # another user
    await client.analytics()
    with pytest.raises(RateLimited):
        await client.analytics()
