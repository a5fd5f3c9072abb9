"""The TalkMe voice-call webhook end to end: real HTTP into the real app, the real OpenAI SDK
against the fake OpenAI server, real SQLite and PostgreSQL (issue 14, item 5)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.channels.test_http_chat import AUTH, answer, chat_settings, contents
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import EventRecorder
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin import keys
from twin.app import create_app
from twin.config import Settings

SECRET = "talkme-shared-secret-0123456789"
HEADER = {"X-TalkMe-Secret": SECRET}
GREETING = "Hello, you are speaking with Olga's assistant."


def talkme_settings(url: str, tmp_path: Any, llm_url: str, **talkme: Any) -> Settings:
    return chat_settings(
        url,
        tmp_path,
        llm_url,
        twin={"owner_name": "Olga", "greeting": GREETING},
        channels={"talkme": {"enabled": True, "secret": SECRET, **talkme}},
    )


Start = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def daemon(aiohttp_client, engine_url, tmp_path, fake_openai) -> Start:  # noqa: F811
    async def start(**talkme: Any) -> TestClient:
        settings = talkme_settings(engine_url, tmp_path, fake_openai.base_url + "/v1", **talkme)
        return await aiohttp_client(create_app(settings))

    return start


def call(message: str, *, session: str = "call-1", user: str = "caller-1", **more: Any) -> dict:
    return {"session_id": session, "user_id": user, "message": message, **more}


async def say(client: TestClient, body: dict[str, Any], headers: dict = HEADER) -> dict:
    response = await client.post("/webhook/talkme", json=body, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_call_greets_remembers_the_phone_and_ends(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(
        answer("We are open until six."),
        answer("Goodbye!", end_conversation=True),
        answer("Hi again."),
    )
    client = await daemon()
    first = await say(client, call("Are you open today?", phone_number="+15551234567",
                                   metadata={"user_name": "Anna"}))
    assert first == {
        "message": f"{GREETING}\n\nWe are open until six.",
        "session_id": "call-1",
        "end_conversation": False,
        "metadata": {"user_name": "Anna", "phone": "+15551234567"},
    }
    second = await say(client, call("Thanks, bye"))
    assert second["message"] == "Goodbye!"  # the same session: no second greeting
    assert second["end_conversation"] is True
    assert second["metadata"]["phone"] == "+15551234567"  # kept from the first webhook
    assert any("Are you open today?" in text for text in contents(fake_openai.chat_requests[-1],
                                                                  "user"))
    third = await say(client, call("Hello?", session="call-2"))  # a new call: greeted again
    assert third["message"] == f"{GREETING}\n\nHi again."


async def test_a_repeated_delivery_gets_the_same_answer_without_a_second_generation(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.queue_reply(answer("Yes, we deliver."), answer("Tomorrow works."))
    client = await daemon()
    body = call("Do you deliver?", timestamp="2026-12-05T12:00:00Z")
    first = await say(client, body)
    again = await say(client, body)
    assert again == first
    assert len(fake_openai.chat_requests) == 1
    # Another timestamp is another message, even with the same words.
    other = await say(client, {**body, "timestamp": "2026-12-05T12:00:09Z"})
    assert other["message"] == "Tomorrow works."
    assert len(fake_openai.chat_requests) == 2


async def test_past_the_deadline_the_caller_hears_the_holding_phrase_then_the_answer(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client = await daemon(answer_deadline=0.3, holding_phrase="One moment please.")
    recorder = EventRecorder()
    client.app[keys.EVENTS].subscribe(recorder)
    fake_openai.start_outage(hang=True)  # the model takes its time
    held = await say(client, call("What are your prices?"))
    assert held["message"] == "One moment please." and held["end_conversation"] is False
    fake_openai.queue_reply(answer("Prices start at ten euros."), answer("Anything else?"))
    fake_openai.end_outage()
    await recorder.wait_for("reply.sent")  # the held turn finished in the background
    next_turn = await say(client, call("Hello?"))
    assert next_turn["message"] == (
        f"{GREETING}\n\nPrices start at ten euros.\n\nAnything else?"
    )
    after = await say(client, call("No, thanks."), headers=HEADER)
    assert "Prices start" not in after["message"]  # said once


async def test_authenticity_fails_closed(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.respond_with(lambda body: answer("ok"))
    client = await daemon()
    for headers in ({}, {"X-TalkMe-Secret": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = await client.post("/webhook/talkme", json=call("hi"), headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["type"] == "unauthorized"
    assert fake_openai.chat_requests == []
    assert (await say(client, call("hi"), headers=AUTH))["message"].endswith("ok")  # admin token
    # A stored key with the webhook:talkme scope passes; a chat key does not.
    made = {}
    for name, scope in (("talkme", "webhook:talkme"), ("chat", "chat")):
        response = await client.post("/keys", json={"name": name, "scopes": [scope]}, headers=AUTH)
        made[name] = (await response.json())["key"]
    passed = await say(client, call("hi again"), headers={"X-API-Key": made["talkme"]})
    assert passed["message"].endswith("ok")
    chat_key = await client.post(
        "/webhook/talkme", json=call("hi"), headers={"X-API-Key": made["chat"]}
    )
    assert chat_key.status == 401
    health = await client.get("/webhook/talkme/health")  # no secret needed
    assert await health.json() == {"status": "ok", "channel": "talkme"}


async def test_hmac_signatures_with_a_replay_window(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.respond_with(lambda body: answer("signed ok"))
    client = await daemon(auth="hmac", replay_window=60)

    def signed(body: bytes, at: float, secret: str = SECRET) -> dict[str, str]:
        stamp = str(int(at))
        signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        return {
            "X-TalkMe-Timestamp": stamp,
            "X-TalkMe-Signature": signature.hexdigest(),
            "Content-Type": "application/json",
        }

    body = json.dumps(call("hi")).encode()
    good = await client.post("/webhook/talkme", data=body, headers=signed(body, time.time()))
    assert good.status == 200 and (await good.json())["message"].endswith("signed ok")
    stale = await client.post("/webhook/talkme", data=body, headers=signed(body, time.time() - 600))
    assert stale.status == 401
    forged = await client.post(
        "/webhook/talkme", data=body, headers=signed(body, time.time(), secret="other")
    )
    assert forged.status == 401
    tampered = json.dumps(call("hi there")).encode()
    replaced = await client.post(
        "/webhook/talkme", data=tampered, headers=signed(body, time.time())
    )
    assert replaced.status == 401
    assert len(fake_openai.chat_requests) == 1


async def test_stats_and_forgetting_a_session(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.respond_with(lambda body: answer("noted"))
    client = await daemon()
    await say(client, call("my name is Anna", user="anna", phone_number="+15550001"))
    await say(client, call("and I like tea", user="anna"))
    await say(client, call("hello", user="bob", session="call-9"))
    stats = await (await client.get("/webhook/talkme/stats", headers=HEADER)).json()
    assert (stats["active_sessions"], stats["users"], stats["messages"]) == (2, 2, 3)
    assert stats["messages_per_session"] == 1.5
    by_user = {s["user_id"]: s for s in stats["sessions"]}
    assert by_user["anna"]["messages"] == 2 and by_user["anna"]["phone"] == "+15550001"
    assert (await client.get("/webhook/talkme/stats")).status == 401

    gone = await client.delete("/webhook/talkme/session/anna", headers=HEADER)
    assert gone.status == 200 and await gone.json() == {"user_id": "anna", "deleted": True}
    assert (await client.delete("/webhook/talkme/session/anna", headers=HEADER)).status == 404
    again = await say(client, call("who am I?", user="anna"))
    assert again["message"].startswith(GREETING)  # a new session: greeted, nothing remembered
    assert not any("Anna" in text for text in contents(fake_openai.chat_requests[-1], "user"))


async def test_a_disabled_channel_is_not_there(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client = await daemon(enabled=False)
    response = await client.post("/webhook/talkme", json=call("hi"), headers=AUTH)
    assert response.status == 404
    health = await client.get("/webhook/talkme/health")
    assert (await health.json())["status"] == "disabled"


async def test_log_lines_name_the_channel(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_openai.queue_reply(answer("I will ask Olga.", requires_human=True))
    client = await daemon()
    with caplog.at_level(logging.INFO, logger="twin.channels.talkme"):
        said = await say(client, call("Can I get a refund?"))
    assert said["end_conversation"] is True  # handed to a person
    lines = [r for r in caplog.records if r.name == "twin.channels.talkme"]
    assert lines and all(r.getMessage().startswith("[TALK_ME] ") for r in lines)
    assert all(getattr(r, "channel", None) == "talkme" for r in lines)


async def test_with_working_hours_a_closed_twin_says_so_and_ends_the_call(
    aiohttp_client,
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    settings = chat_settings(
        engine_url,
        tmp_path,
        fake_openai.base_url + "/v1",
        schedule={"closed": ["2000-01-01/2100-01-01"], "away_message": "Closed; call again."},
        channels={"talkme": {"enabled": True, "secret": SECRET, "working_hours": True}},
    )
    client = await aiohttp_client(create_app(settings))
    said = await say(client, call("hello?"))
    assert said["message"] == "Closed; call again."
    assert said["end_conversation"] is True
    assert fake_openai.chat_requests == []
