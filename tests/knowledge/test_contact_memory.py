"""Memory of each contact (issue 16, item 4), on SQLite and PostgreSQL: a conversation gone quiet
has its facts extracted by the model (the fake's structured output), stored for the person with
the message each came from, given to later conversations — on another channel too, where the
same Telegram user is recognised — and shown, corrected and cleared by the owner."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.channels.test_http_chat import AUTH, answer, chat_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.providers.fixtures import fake_openai  # noqa: F401  (a fixture)
from tests.providers.openai_fake import FakeOpenAI
from twin import keys
from twin.app import create_app
from twin.clock import ManualClock
from twin.ports import Adapters

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
async def app(aiohttp_client, engine_url, tmp_path, fake_openai):  # noqa: F811
    settings = chat_settings(
        engine_url,
        tmp_path,
        fake_openai.base_url + "/v1",
        knowledge={"memory_quiet_minutes": 30, "memory_check_seconds": 3600},
        # the test's integration vouches for its Telegram user ids (off by default)
        channels={"conversation": {"telegram_user_ids": True}},
    )
    clock = ManualClock(START)
    client = await aiohttp_client(create_app(settings, adapters=Adapters(clock=clock)))
    # the tests make the passes: the app's own task (its first pass at start-up) could take a
    # conversation before the test's `run_once` under load
    await client.app[keys.SERVICES]["memory"].stop()
    return client, clock


def _system(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "system")


def _extraction(body: dict[str, Any]) -> bool:
    first = _system(body).split("\n", 1)[0]
    return first.startswith("You keep") and "'s notes about" in first


async def converse(client, message: str, **extra: Any) -> dict[str, Any]:
    body = {"message": message, "user_id": "555", "platform": "telegram", **extra}
    response = await client.post("/api/v1/conversation/chat", json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_quiet_conversations_are_remembered_and_reused(
    app,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client, clock = app
    calls: list[str] = []
    prompts: list[str] = []

    def model(body: dict[str, Any]) -> dict[str, Any]:
        system = _system(body)
        if _extraction(body):
            calls.append("extract")
            user = body["messages"][1]["content"]
            assert "⟦contact " in user and "собака Бим" in user  # the contact's words, fenced
            return {
                "items": [
                    {"kind": "fact", "text": "Анна, у неё собака Бим", "message": 1},
                    {"kind": "followup", "text": "Olga will send the price list", "message": 2},
                    {"kind": "gossip", "text": "not a kind", "message": 1},
                ]
            }
        prompts.append(system)
        return answer("Хорошо, пришлю прайс завтра")

    fake_openai.respond_with(model)
    said = await converse(client, "Привет! Я Анна, у меня собака Бим. Пришлите прайс?")
    memory = client.app[keys.SERVICES]["memory"]
    assert await memory.run_once() == 0  # not quiet yet
    await clock.advance(31 * 60)
    assert await memory.run_once() == 1
    assert calls == ["extract"]
    assert await memory.run_once() == 0  # the cursor moved: nothing is read twice
    assert calls == ["extract"]

    contacts = (await (await client.get("/contacts", headers=AUTH)).json())["contacts"]
    assert [(c["twin"], c["telegram_user_id"]) for c in contacts] == [("default", 555)]
    contact_id = contacts[0]["id"]
    stored = await (await client.get(f"/contacts/{contact_id}/memory", headers=AUTH)).json()
    facts = {f["kind"]: f for f in stored["facts"]}
    assert set(facts) == {"fact", "followup"}  # the unknown kind was dropped
    history = await (
        await client.get(f"/api/v1/conversation/history/{said['session_id']}", headers=AUTH)
    ).json()
    assert facts["fact"]["message_id"] is not None and facts["followup"]["message_id"] is not None
    assert facts["fact"]["message_id"] < facts["followup"]["message_id"]  # contact, then twin
    assert len(history["messages"]) == 2

    followups = (await (await client.get("/followups", headers=AUTH)).json())["followups"]
    assert [(f["text"], f["contact"]["id"]) for f in followups] == [
        ("Olga will send the price list", contact_id)
    ]

    # a new conversation with the same person: the memory is in the prompt, fenced as data
    await converse(client, "Добрый день, это снова я")
    assert "⟦memory " in prompts[-1] and "Анна, у неё собака Бим" in prompts[-1]
    assert "(you promised) Olga will send the price list" in prompts[-1]

    # the same Telegram user in a personal account's chat: recognised, same memory
    repo = client.app[keys.DATABASE].repo
    account_id = await client.app[keys.DIRECTORY].create("default")
    chat, _ = await repo.upsert_chat(account_id, 555, kind="private", title="Anna")
    remembered = await repo.memory_for_chat(chat.id)
    assert {f.text for f in remembered} == {
        "Анна, у неё собака Бим",
        "Olga will send the price list",
    }
    stranger, _ = await repo.upsert_chat(account_id, 777, kind="private", title="Bob")
    assert await repo.memory_for_chat(stranger.id) == []

    # the owner corrects it; the next prompt has the correction only
    put = await client.put(
        f"/contacts/{contact_id}/memory",
        json={"facts": [{"kind": "preference", "text": "Prefers   evening calls"}]},
        headers=AUTH,
    )
    assert put.status == 200
    assert [(f["kind"], f["text"]) for f in (await put.json())["facts"]] == [
        ("preference", "Prefers evening calls")
    ]
    await converse(client, "Ещё вопрос")
    assert "Prefers evening calls" in prompts[-1] and "собака Бим" not in prompts[-1]

    done = await client.post(f"/followups/{followups[0]['id']}/done", headers=AUTH)
    assert done.status == 404  # the correction replaced it
    cleared = await client.delete(f"/contacts/{contact_id}/memory", headers=AUTH)
    assert cleared.status == 204
    after = await (await client.get(f"/contacts/{contact_id}/memory", headers=AUTH)).json()
    assert after["facts"] == []
    assert (await client.get("/contacts/999999/memory", headers=AUTH)).status == 404


async def test_followups_close_and_a_failed_extraction_retries(
    app,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    client, clock = app
    extractions: list[str] = []
    answers = iter(
        [json.dumps({"items": [{"kind": "followup", "text": "Send the invoice", "message": 2}]})]
    )

    def model(body: dict[str, Any]) -> dict[str, Any] | str:
        if _extraction(body):
            extractions.append("extract")
            return next(answers, "nothing I can parse")
        return answer("I'll send the invoice")

    fake_openai.respond_with(model)
    await converse(client, "Can you send the invoice?")
    memory = client.app[keys.SERVICES]["memory"]
    await clock.advance(31 * 60)
    fake_openai.fail_next(status=400)  # a refusal: nothing stored, the chat rests
    assert await memory.run_once() == 0
    assert await memory.run_once() == 0  # resting: not asked again at once
    assert extractions == []  # the refused request never reached the script
    assert (await (await client.get("/followups", headers=AUTH)).json())["followups"] == []

    await clock.advance(16 * 60)
    assert await memory.run_once() == 1
    followups = (await (await client.get("/followups", headers=AUTH)).json())["followups"]
    assert [f["text"] for f in followups] == ["Send the invoice"]

    await converse(client, "Thanks! Also the receipt please")
    await clock.advance(31 * 60)
    assert await memory.run_once() == 1  # an unreadable answer: nothing new, the cursor moves
    assert await memory.run_once() == 0
    assert extractions == ["extract", "extract"]

    done = await client.post(f"/followups/{followups[0]['id']}/done", headers=AUTH)
    assert done.status == 204
    assert (await (await client.get("/followups", headers=AUTH)).json())["followups"] == []
    again = await client.post(f"/followups/{followups[0]['id']}/done", headers=AUTH)
    assert again.status == 404


async def test_a_phone_joins_a_telegram_contact_and_a_call(app) -> None:
    """The owner's Telegram contact shows their phone; intake keeps it with the chat, and a
    TalkMe call from that number is the same person, with the same memory."""
    from telethon.tl import types

    from twin.adapters.telegram.mapping import sender_from_user
    from twin.db.records_knowledge import QuietChat
    from twin.domain.memory import Person
    from twin.domain.models import ChatKind, IncomingMessage
    from twin.services.intake import store_incoming_tx

    client, clock = app
    repo = client.app[keys.DATABASE].repo
    events = client.app[keys.EVENTS]
    user = types.User(id=555, first_name="Anna", phone="79991234567", contact=True)
    sender = sender_from_user(user, 555)
    assert sender.phone == "79991234567"
    account_id = await client.app[keys.DIRECTORY].create("default")
    message = IncomingMessage(
        "default", 555, ChatKind.PRIVATE, 1, sender, clock.now(), "Привет, это Анна"
    )
    stored = await repo.transaction(lambda tx: store_incoming_tx(tx, events, account_id, message))
    chat = stored[0]
    assert chat.channel_data["phone"] == "+79991234567"

    # what the twin learnt in that Telegram chat…
    quiet = QuietChat(chat, (await repo.get_twin("default")).id, Person(555, "+79991234567"), None)
    assert (
        await repo.store_memory(
            quiet,
            [("fact", "Anna rents a bike every weekend", stored[2].id)],
            (stored[2].id, clock.now()),
            max_facts=30,
        )
        == 1
    )
    # …is known when she calls from the same number
    talkme = await repo.channel_instance("talkme", "talkme")
    call, _ = await repo.upsert_chat(talkme.id, 4242, kind="private", title="caller")
    await repo.update_chat(call.id, channel_data={"phone": "+7 999 123-45-67"})
    assert [f.text for f in await repo.memory_for_chat(call.id)] == [
        "Anna rents a bike every weekend"
    ]


async def test_a_business_api_user_is_not_a_telegram_user_unless_vouched_for(
    aiohttp_client,
    engine_url,  # noqa: F811
    tmp_path,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    from twin.channels.conversations import peer_of

    settings = chat_settings(engine_url, tmp_path, fake_openai.base_url + "/v1")
    client = await aiohttp_client(create_app(settings))
    fake_openai.respond_with(lambda body: answer("ok"))
    said = await converse(client, "hi, I am Telegram user 555")
    repo = client.app[keys.DATABASE].repo
    instance = await repo.get_account("api")
    chat = await repo.get_chat_by_peer(instance.id, peer_of(said["session_id"]))
    assert chat.channel_data["platform"] == "telegram"
    assert "telegram_user_id" not in chat.channel_data  # any key could claim that id
    assert await repo.memory_for_chat(chat.id) == []
