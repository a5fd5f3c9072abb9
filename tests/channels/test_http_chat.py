"""The HTTP chat channel end to end: real HTTP into the real app, the real OpenAI SDK against
the fake OpenAI server, real SQLite and PostgreSQL (issue 14, item 3)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin import keys
from twin.app import create_app
from twin.channels.conversations import peer_of
from twin.config import Settings, load_settings

TOKEN = "chat-api-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def answer(text: str, **flags: Any) -> dict[str, Any]:
    return {
        "text": text,
        "requires_human": False,
        "intent": "chat",
        "confidence": 0.9,
        "end_conversation": False,
        **flags,
    }


def chat_settings(url: str, tmp_path: Any, llm_url: str, **sections: Any) -> Settings:
    """A daemon with the real openai SDK on `llm_url`, closed hours (the HTTP channels ignore
    them); `sections` replace whole sections (e.g. `channels=`)."""
    values: dict[str, Any] = dict(
        storage={"url": url, "data_dir": tmp_path},
        security={"secret_key": "chat-tests-secret"},
        api={"tokens": [TOKEN]},
        llm={
            "provider": "openai",
            "model": "gpt-test",
            "base_url": llm_url,
            "api_key": "sk-test",
            "max_retries": 0,
            "timeout": 5,
        },
        stt={"provider": "none"},
        tts={"provider": "none"},
        twin={"owner_name": "Olga"},
        schedule={"hours": {day: ["09:00-09:01"] for day in DAYS}},
    )
    return load_settings(None, **{**values, **sections})


Client = Callable[[], Awaitable[TestClient]]


@pytest.fixture
def daemon(aiohttp_client, engine_url, tmp_path, fake_openai) -> Client:  # noqa: F811
    """A new daemon on the same database each call (a restart, when the previous is closed)."""
    settings = chat_settings(engine_url, tmp_path, fake_openai.base_url + "/v1")

    async def start() -> TestClient:
        return await aiohttp_client(create_app(settings))

    return start


async def post_chat(client: TestClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/chat", json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


def contents(body: dict[str, Any], role: str) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == role]


async def test_a_thread_remembers_across_a_restart(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(answer("Nice to meet you, Anna!"), answer("You are Anna."))
    first = await daemon()
    said = await post_chat(first, message="Hi, I'm Anna", user_id="u-1")
    assert said["response"] == "Nice to meet you, Anna!"
    assert said["success"] is True and said["escalated"] is False
    assert said["user_id"] == "u-1" and said["chat_id"] is None
    thread = said["thread_id"]
    assert thread
    await first.close()  # the daemon stops: only the database remembers

    second = await daemon()
    again = await post_chat(second, message="Who am I?", thread_id=thread)
    assert again == {
        "response": "You are Anna.",
        "thread_id": thread,
        "user_id": None,
        "chat_id": None,
        "success": True,
        "escalated": False,
    }
    prompt = fake_openai.chat_requests[-1]
    assert any("Hi, I'm Anna" in text for text in contents(prompt, "user"))
    assert "Nice to meet you, Anna!" in contents(prompt, "assistant")
    # Another thread knows nothing of Anna.
    fake_openai.queue_reply(answer("Hello!"))
    other = await post_chat(second, message="Hello", chat_id="c-2")
    assert other["thread_id"] == "c-2"
    assert not any("Anna" in text for text in contents(fake_openai.chat_requests[-1], "user"))


async def test_concurrent_requests_on_one_thread_each_see_the_answers_before_them(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.respond_with(lambda body: answer(f"answer {len(fake_openai.chat_requests)}"))
    client = await daemon()
    answers = await asyncio.gather(
        *(post_chat(client, message=f"question {n}", thread_id="t-order") for n in range(5))
    )
    assert sorted(a["response"] for a in answers) == [f"answer {n}" for n in range(1, 6)]
    # Never interleaved: the k-th generation saw the k-1 answers before it, in order.
    for k, request in enumerate(fake_openai.chat_requests):
        assert [a for a in contents(request, "assistant") if a.startswith("answer")] == [
            f"answer {n}" for n in range(1, k + 1)
        ]


async def test_requires_human_pauses_the_thread(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(answer("Let me ask Olga.", requires_human=True, intent="pricing"))
    client = await daemon()
    said = await post_chat(client, message="Can I get a discount?", thread_id="t-human")
    assert said["escalated"] is True and said["response"] == "Let me ask Olga."
    calls = len(fake_openai.chat_requests)
    later = await post_chat(client, message="Hello?", thread_id="t-human")
    assert later["escalated"] is True and later["response"] == ""
    assert len(fake_openai.chat_requests) == calls  # paused: the model is not asked
    # The owner finds the thread among the channel's chats and resumes it.
    listed = await (await client.get("/chats", params={"account": "chat"}, headers=AUTH)).json()
    [thread] = [c for c in listed["chats"] if c["thread_id"] == "t-human"]
    assert thread["paused"] is True
    resumed = await client.post(
        f"/chats/{thread['id']}/resume", json={"account": "chat"}, headers=AUTH
    )
    assert resumed.status == 200, await resumed.text()
    fake_openai.queue_reply(answer("Olga says yes!"))
    back = await post_chat(client, message="So?", thread_id="t-human")
    assert back == {**back, "escalated": False, "response": "Olga says yes!"}
    events = await client.app[keys.DATABASE].repo.events_since(0, limit=1000)
    escalated = [e.data["thread"] for e in events if e.type == "conversation.escalated"]
    assert escalated == ["t-human"]


async def test_bad_requests_get_the_error_shape(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client = await daemon()
    unauthenticated = await client.post("/api/chat", json={"message": "hi"})
    assert unauthenticated.status == 401
    missing = await client.post("/api/chat", json={"thread_id": "x"}, headers=AUTH)
    assert missing.status == 422
    body = await missing.json()
    assert body["error"]["type"] == "validation_error"
    assert [d["field"] for d in body["error"]["details"]] == ["message"]
    too_long = await client.post("/api/chat", json={"message": "x" * 4001}, headers=AUTH)
    assert too_long.status == 422
    assert [d["field"] for d in (await too_long.json())["error"]["details"]] == ["message"]
    assert fake_openai.chat_requests == []


async def test_a_model_outage_is_a_503_and_nothing_is_answered_later(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client = await daemon()
    fake_openai.start_outage(status=500)
    response = await client.post(
        "/api/chat", json={"message": "anyone?", "thread_id": "t-down"}, headers=AUTH
    )
    assert response.status == 503, await response.text()
    assert (await response.json())["error"]["type"] == "unavailable"
    fake_openai.end_outage()
    # The failure is recorded, and the thread goes on with the next message.
    fake_openai.queue_reply(answer("Back again."))
    later = await post_chat(client, message="now?", thread_id="t-down")
    assert later["response"] == "Back again."


async def test_debug_echoes_and_masks_secrets_in_the_log(
    daemon: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await daemon()
    sent = {"message": "hi", "api_key": "sk-secret-value", "nested": {"password": "hunter2"}}
    with caplog.at_level(logging.INFO, logger="twin.channels.http_chat"):
        response = await client.post("/api/debug", json=sent, headers=AUTH)
    assert response.status == 200
    assert (await response.json())["received"] == sent
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "api/debug" in logged and "'message': 'hi'" in logged
    assert "sk-secret-value" not in logged and "hunter2" not in logged
    not_json = await client.post("/api/debug", data=b"{", headers=AUTH)
    assert not_json.status == 400


async def test_root_says_what_runs_without_a_token(daemon: Client) -> None:
    client = await daemon()
    response = await client.get("/")
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "twin" and body["channels"] == ["telegram", "http_chat"]
    assert "token" not in json.dumps(body).lower()


async def test_the_channel_instance_is_not_a_telegram_account(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(answer("Hi!"))
    client = await daemon()
    await post_chat(client, message="hello", thread_id="t-accounts")
    response = await client.get("/accounts", headers=AUTH)
    assert response.status == 200
    assert [a["name"] for a in (await response.json())["accounts"]] == []


async def test_a_job_left_by_a_dead_request_is_cancelled_not_delivered(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
) -> None:
    """The process died inside a request: at the next start the worker finds the job, and
    cancels it (`no_client`) instead of sending it anywhere."""
    from tests.fakes import FakeAccounts, ScriptedLLM, WatchedClock, start_twin, twin_settings
    from tests.services.conftest import START
    from twin.channels.conversations import LEASE
    from twin.channels.http_chat import CHANNEL
    from twin.domain.models import ReplyState

    clock = WatchedClock(START)
    settings = twin_settings(engine_url, tmp_path)
    accounts = FakeAccounts()
    async with start_twin(settings, clock=clock, accounts=accounts, llm=ScriptedLLM()) as twin:
        instance = await twin.repo.channel_instance("chat", CHANNEL)
        chat, _ = await twin.repo.upsert_chat(instance.id, peer_of("t-dead"), external_id="t-dead")
        message, _ = await twin.repo.add_incoming(
            instance.id, chat.id, None, date=clock.now(), text="hello?"
        )
        reply = await twin.repo.create_reply(
            instance.id,
            chat.id,
            reply_at=clock.now(),
            message_ids=[message.id],
            state=ReplyState.GENERATING,
            decision={"action": "reply", "channel": CHANNEL},
            lease_until=clock.now() + LEASE,  # held by the request that is about to die
        )
    async with start_twin(settings, clock=clock, accounts=accounts, llm=ScriptedLLM()) as twin:
        cancelled = await twin.recorder.wait_for("reply.cancelled")
        assert cancelled.data == {"reply": reply.id, "reason": "no_client"}
        assert (await twin.repo.get_reply(reply.id)).state is ReplyState.CANCELLED
        assert accounts.messengers["default"].delivered == []
        assert twin.llm.calls == []


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_the_stream_sends_deltas_then_done_and_remembers(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    full = "Hello Anna, we are open from nine to six today."
    fake_openai.queue_reply(full)
    client = await daemon()
    response = await client.post(
        "/api/chat/stream", json={"message": "Open today?", "thread_id": "t-s"}, headers=AUTH
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(await response.text())
    deltas = [data["text"] for kind, data in events if kind == "delta"]
    assert len(deltas) > 1 and "".join(deltas) == full
    assert fake_openai.chat_requests[-1]["stream"] is True  # streamed by the provider too
    kind, done = events[-1]
    assert kind == "done"
    assert done["thread_id"] == "t-s" and done["response"] == full
    assert done["escalated"] is False and done["usage"]["completion_tokens"] > 0
    # The streamed answer is part of the thread's memory.
    fake_openai.queue_reply(answer("Yes, until six."))
    await post_chat(client, message="Really?", thread_id="t-s")
    assert full in contents(fake_openai.chat_requests[-1], "assistant")


async def leave_mid_stream(
    app: web.Application, post: Callable[..., Any], fake_openai: FakeOpenAI  # noqa: F811
) -> None:
    from tests.fakes import EventRecorder

    fake_openai.queue_reply("one two three four five six seven eight nine")
    fake_openai.stream_gate = asyncio.Event()  # the provider stops after its first piece
    recorder = EventRecorder()
    app[keys.EVENTS].subscribe(recorder)
    response = await post(
        "/api/chat/stream", json={"message": "count", "thread_id": "t-gone"}, headers=AUTH
    )
    first = await response.content.readuntil(b"\n\n")
    assert sse_events(first.decode()) == [("delta", {"text": "one two three "})]
    response.close()  # the client goes away

    cancelled = await recorder.wait_for("reply.cancelled")
    assert cancelled.data["reason"] == "no_client"
    fake_openai.stream_gate.set()
    await asyncio.wait_for(fake_openai.stream_closed.wait(), 5)
    assert fake_openai.streams_closed == 1  # the provider's stream was closed, not read out
    repo = app[keys.DATABASE].repo
    reply = await repo.get_reply(cancelled.data["reply"])
    assert reply.text == "one two three "  # the partial text, kept on the cancelled job
    assert [m.direction.value for m in await repo.reply_messages(reply.id)] == ["incoming"]
    assert recorder.of("reply.sent") == []


async def test_a_client_leaving_mid_stream_cancels_the_generation(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    """The test server cancels the handler when its client goes."""
    client = await daemon()
    await leave_mid_stream(client.app, client.post, fake_openai)


async def test_a_client_leaving_is_noticed_by_the_production_server_too(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    """web.run_app does not cancel handlers on disconnect: the view notices the closed
    connection itself while the model is still thinking."""
    app = create_app(chat_settings(engine_url, tmp_path, fake_openai.base_url + "/v1"))
    runner = web.AppRunner(app)  # handler_cancellation=False, as web.run_app
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:

            async def post(path: str, **kwargs: Any) -> Any:
                return await session.post(base + path, **kwargs)

            await leave_mid_stream(app, post, fake_openai)
    finally:
        await runner.cleanup()


async def test_a_stream_that_fails_ends_with_an_error_event(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client = await daemon()
    fake_openai.start_outage(status=500)
    response = await client.post(
        "/api/chat/stream", json={"message": "hi", "thread_id": "t-err"}, headers=AUTH
    )
    events = sse_events(await response.text())
    fake_openai.end_outage()
    assert [kind for kind, _ in events] == ["error"]
    error = events[0][1]["error"]
    assert error["type"] == "unavailable" and error["request_id"]


async def test_a_channel_answering_as_a_missing_twin_says_so(
    aiohttp_client,
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    settings = chat_settings(
        engine_url, tmp_path, fake_openai.base_url + "/v1", channels={"chat": {"twin": "sales"}}
    )
    client = await aiohttp_client(create_app(settings))
    refused = await client.post("/api/chat", json={"message": "hi"}, headers=AUTH)
    assert refused.status == 409
    assert "sales" in (await refused.json())["error"]["message"]
    assert fake_openai.chat_requests == []
    # Once the twin exists, the channel answers as it.
    created = await client.post(
        "/twins", json={"name": "sales", "twin": {"owner_name": "Sally"}}, headers=AUTH
    )
    assert created.status == 201
    fake_openai.queue_reply(answer("Roses are in!"))
    said = await post_chat(client, message="hi")
    assert said["response"] == "Roses are in!"
    assert "You are Sally." in fake_openai.chat_requests[-1]["messages"][0]["content"]


async def test_the_event_log_filters_by_channel(
    daemon: Client,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client = await daemon()
    repo = client.app[keys.DATABASE].repo
    telegram = await repo.get_or_create_account("default")
    await repo.append_event("settings.changed", {"account": "default"}, account_id=telegram.id)
    fake_openai.queue_reply(answer("Hi!"))
    await post_chat(client, message="hello", thread_id="t-events")
    response = await client.get(
        "/events", params={"channel": "http_chat", "last_event_id": "0"}, headers=AUTH
    )
    seen = []
    while not seen or seen[-1][0] != "reply.sent":
        block = (await response.content.readuntil(b"\n\n")).decode()
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            seen.append((fields["event"], json.loads(fields["data"])["account"]))
    response.close()
    assert seen == [
        ("message.received", "chat"),
        ("reply.generating", "chat"),
        ("reply.sent", "chat"),
    ]  # the Telegram account's event is left out
    bad = await client.get("/events", params={"channel": "fax"}, headers=AUTH)
    assert bad.status == 422


async def test_with_working_hours_a_closed_twin_answers_its_away_message(
    aiohttp_client,
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    settings = chat_settings(
        engine_url,
        tmp_path,
        fake_openai.base_url + "/v1",
        schedule={"closed": ["2000-01-01/2100-01-01"], "away_message": "Closed now, back at nine."},
        channels={"chat": {"working_hours": True}},
    )
    client = await aiohttp_client(create_app(settings))
    said = await post_chat(client, message="anyone?", thread_id="t-night")
    assert said["response"] == "Closed now, back at nine." and said["escalated"] is False
    assert fake_openai.chat_requests == []
    repo = client.app[keys.DATABASE].repo
    instance = await repo.get_account("chat")
    chat = await repo.get_chat_by_peer(instance.id, peer_of("t-night"))
    [message] = await repo.history(instance.id, chat.id)
    assert (message.state.value, message.state_reason) == ("skipped", "outside_hours")
