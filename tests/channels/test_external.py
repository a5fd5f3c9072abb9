"""The external messenger channel end to end (issue 15, item 2): real HTTP in, the real openai
SDK against the fake, real SQLite and PostgreSQL, and the twin's webhooks received by a local
server that checks their signatures and can fail."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.channels.test_http_chat import AUTH, answer, chat_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import EventRecorder
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin import keys
from twin.app import create_app
from twin.domain.webhooks import SIGNATURE_HEADER, verify

SECRET = "external-webhook-secret-0123456789"


class Receiver:
    """The external messenger's webhook endpoint: records every attempt, verifies its
    signature, answers `statuses` in turn (then 200)."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.hold: asyncio.Event | None = None  # set: an attempt waits on it (status "held")
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.hold is not None:
            async with self.changed:
                self.attempts.append(
                    {
                        "key": request.headers.get("Idempotency-Key"),
                        "status": "held",
                        "payload": json.loads(body),
                    }
                )
                self.changed.notify_all()
            await self.hold.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        async with self.changed:
            self.attempts.append(
                {
                    "payload": json.loads(body),
                    "key": request.headers.get("Idempotency-Key"),
                    "signed": verify(
                        SECRET, request.headers.get(SIGNATURE_HEADER, ""), body, time.time()
                    ),
                    "status": status,
                }
            )
            self.changed.notify_all()
        return web.Response(status=status)

    def delivered(self) -> list[dict[str, Any]]:
        return [a["payload"] for a in self.attempts if a["status"] != "held" and a["status"] < 300]

    async def wait(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
        return predicate()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    yield hook, str(server.make_url("/hook"))
    await server.close()


Start = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def daemon(aiohttp_client, engine_url, tmp_path, fake_openai, receiver) -> Start:  # noqa: F811
    """A daemon with the external channel posting to `receiver` (a new one each call, on the
    same database: a restart when the previous is closed)."""

    def start(**external: Any) -> Awaitable[TestClient]:
        section = {
            "enabled": True,
            "webhook_url": receiver[1],
            "webhook_secret": SECRET,
            "company_id": "acme",
            "panel_base_url": "https://twin.example.com",
            "retry_base": 0.02,
            **external,
        }
        settings = chat_settings(
            engine_url, tmp_path, fake_openai.base_url + "/v1", channels={"external": section}
        )
        return aiohttp_client(create_app(settings))

    return start


def recorder(client: TestClient) -> EventRecorder:
    events = EventRecorder()
    client.app[keys.EVENTS].subscribe(events)
    return events


async def post_message(client: TestClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/external/messages", json=body, headers=AUTH)
    assert response.status == 202, await response.text()
    return await response.json()


async def test_a_message_is_answered_by_a_signed_webhook(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    fake_openai.queue_reply(answer("Yes, we deliver on Fridays.", intent="request"))
    client = await daemon()
    events = recorder(client)
    accepted = await post_message(
        client,
        chat_id=777001,
        channel_id="tg",
        task_id="T-9",
        title="Anna",
        contacts={"username": "anna"},
        message="Do you deliver? My number is +7 912 345-67-89",
    )
    assert accepted["thread_id"] == "tg:777001" and accepted["message_id"] > 0
    [delivered] = await hook.wait(hook.delivered)
    [attempt] = hook.attempts
    assert attempt["signed"] and attempt["key"]
    assert delivered == {
        **delivered,
        "wh_type": "message",
        "company_id": "acme",
        "channel_id": "tg",
        "task_id": "T-9",
        "thread_id": "tg:777001",
        "external_chat_id": "777001",
        "message_text": "Yes, we deliver on Fridays.",
        "message_type": "bot",
        "title": "Anna",
        "contacts": {"username": "anna"},
        "get_contact": {"phone": "+79123456789"},
        "interest": True,
        "is_bot": False,
        "operator": False,
        "close": False,
        "success": False,
    }
    assert delivered["panel_url"].startswith("https://twin.example.com/admin/#/chats/external/")
    # the share link opens the conversation, read-only, without a token
    share_path = delivered["share_url"].removeprefix("https://twin.example.com")
    shared = await (await client.get(share_path)).json()
    assert [(m["role"], m["text"]) for m in shared["messages"]] == [
        ("user", "Do you deliver? My number is +7 912 345-67-89"),
        ("twin", "Yes, we deliver on Fridays."),
    ]
    tampered = share_path[:-3] + ("AAA" if not share_path.endswith("AAA") else "BBB")
    assert (await client.get(tampered)).status == 404
    await events.wait_for("webhook.delivered")
    listed = await (await client.get("/webhooks/deliveries", headers=AUTH)).json()
    [row] = listed["deliveries"]
    assert row["state"] == "delivered" and row["attempts"] == 1


async def test_a_failing_receiver_gets_the_same_delivery_until_it_answers_2xx(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    hook.statuses = [500, 503]
    fake_openai.queue_reply(answer("Sure."))
    client = await daemon()
    events = recorder(client)
    await post_message(client, chat_id="c-1", message="Hi")
    await hook.wait(hook.delivered)
    done = await events.wait_for("webhook.delivered")
    assert done.data["attempts"] == 3 and done.data["wh_type"] == "message"
    assert [a["status"] for a in hook.attempts] == [500, 503, 200]
    assert len({a["key"] for a in hook.attempts}) == 1  # one idempotency key for all attempts
    assert all(a["signed"] for a in hook.attempts)
    [row] = (await (await client.get("/webhooks/deliveries", headers=AUTH)).json())["deliveries"]
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 3, 200)


async def test_a_delivery_given_up_is_dead_until_redelivered(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    hook.statuses = [500] * 100
    fake_openai.queue_reply(answer("Sure."))
    client = await daemon(max_age=0.05)  # the retries would come too late: dead soon
    events = recorder(client)
    await post_message(client, chat_id="c-2", message="Hi")

    gave_up = await events.wait_for("webhook.dead")
    listed = await client.get("/webhooks/deliveries", params={"state": "dead"}, headers=AUTH)
    [row] = (await listed.json())["deliveries"]
    assert row["id"] == gave_up.data["delivery"]
    assert row["last_error"] == "HTTP 500" and row["last_status"] == 500
    hook.statuses = []
    again = await client.post(f"/webhooks/deliveries/{row['id']}/redeliver", headers=AUTH)
    assert again.status == 200 and (await again.json())["state"] == "pending"
    await hook.wait(hook.delivered)
    await events.wait_for("webhook.delivered")
    assert hook.attempts[-1]["key"] == hook.attempts[0]["key"]
    assert (await client.post("/webhooks/deliveries/999999/redeliver", headers=AUTH)).status == 404


async def test_escalation_and_an_operators_answer_pause_the_dialogue(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    fake_openai.queue_reply(answer("Let me ask a colleague.", requires_human=True))
    client = await daemon()
    await post_message(client, chat_id="c-3", message="Can I get a refund?")
    [escalated] = await hook.wait(hook.delivered)
    assert escalated["wh_type"] == "operator_requested" and escalated["operator"] is True
    calls = len(fake_openai.chat_requests)

    await post_message(
        client, chat_id="c-3", message="Yes, refunded today.", message_type="operator"
    )
    await post_message(client, chat_id="c-3", message="Thanks!")  # paused: stored, not answered
    listed = await (await client.get("/chats", params={"account": "external"}, headers=AUTH)).json()
    [chat] = [c for c in listed["chats"] if c["thread_id"] == "c-3"]
    assert chat["paused"] is True
    repo = client.app[keys.DATABASE].repo
    instance = await client.app[keys.EXTERNAL].conversations.instance()
    stored = await repo.get_chat_by_peer(instance.id, chat["id"])
    history = sorted(await repo.history(instance.id, stored.id), key=lambda m: m.id)
    assert [(m.direction.value, m.reply_id is None, m.text) for m in history] == [
        ("incoming", False, "Can I get a refund?"),
        ("outgoing", False, "Let me ask a colleague."),
        ("outgoing", True, "Yes, refunded today."),  # the operator's turn: the owner's
        ("incoming", True, "Thanks!"),
    ]
    assert len(fake_openai.chat_requests) == calls  # the model was not asked again
    assert len(hook.delivered()) == 1


async def test_a_delivery_cut_by_a_restart_is_posted_by_the_next_daemon(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    hook.hold = asyncio.Event()  # the first attempt hangs: the daemon stops in the middle
    fake_openai.queue_reply(answer("See you."))
    first = await daemon(timeout=0.3)
    await post_message(first, chat_id="c-4", message="Bye")
    await hook.wait(lambda: hook.attempts)
    await first.close()  # mid-post: the delivery stays pending, leased for a moment
    hook.hold = None
    second = await daemon(timeout=0.3)
    events = recorder(second)
    [delivered] = await hook.wait(hook.delivered)
    await events.wait_for("webhook.delivered")
    assert delivered["message_text"] == "See you."
    assert [a["status"] for a in hook.attempts] == ["held", 200]
    assert hook.attempts[0]["key"] == hook.attempts[1]["key"]  # the same delivery, once
    rows = await second.app[keys.DATABASE].repo.list_deliveries()
    # `attempts` counts the attempts that ended (the cut one never did)
    assert [(r.state, r.attempts) for r in rows] == [("delivered", 1)]


async def test_a_receiver_that_is_down_gets_the_delivery_when_it_is_back(
    daemon: Start,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    url, port = str(server.make_url("/hook")), server.port
    await server.close()  # the receiver is down: connections are refused
    fake_openai.queue_reply(answer("Back soon."))
    client = await daemon(webhook_url=url)
    events = recorder(client)
    await post_message(client, chat_id="c-5", message="Anyone?")

    await events.wait_for("webhook.retry", count=2)  # refused twice, still pending
    [row] = await client.app[keys.DATABASE].repo.list_deliveries("pending")
    assert "Connect" in (row.last_error or "") and row.last_status is None
    back = TestServer(app, port=port)  # the receiver restarts on the same address
    await back.start_server()
    try:
        await events.wait_for("webhook.delivered")
        [delivered] = hook.delivered()
        assert delivered["message_text"] == "Back soon."
    finally:
        await back.close()
