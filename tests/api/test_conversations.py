"""GET /conversations and GET /messages' reply details on the real app, SQLite and PostgreSQL:
every channel's conversations in one list, the filters (channel, paused, escalated, failed),
a case-insensitive search in any script over titles, thread ids, texts and transcripts, a key
bound to an account seeing its own only; and why and when each reply job answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import AUTH, assert_error
from tests.api.test_control import control_settings
from tests.api.test_keys import bearer, create
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
async def client(engine_url, make_client, tmp_path):  # noqa: F811
    return await make_client(settings=control_settings(engine_url, tmp_path), real_database=True)


@pytest.fixture
async def seeded(client) -> dict[str, int]:
    """default (Telegram): Алиса (escalated, newest), Bob (paused, a failed reply, a voice
    note); `web` (HTTP chat): one thread. Activity: web < Bob < Алиса."""
    repo = client.app[keys.DATABASE].repo
    default = await repo.get_or_create_account("default")
    web = await repo.channel_instance("web", "http_chat")

    thread, _ = await repo.upsert_chat(
        web.id, 5, kind="private", title="Visitor", external_id="thread-42"
    )
    await repo.update_chat(thread.id, last_incoming_at=T0)
    await repo.update_chat(thread.id, paused_until=T0)  # a pause long over: not paused
    await repo.add_incoming(web.id, thread.id, 1, date=T0, text="Do you deliver 100% of orders?")
    await repo.add_incoming(
        web.id, thread.id, 2, date=T0, text="To the Hauptstraße", kind="voice", duration=2.0
    )

    bob, _ = await repo.upsert_chat(default.id, 1002, kind="private", title="Bob")
    await repo.update_chat(
        bob.id,
        last_incoming_at=T0 + timedelta(hours=1),
        paused_until=datetime(9999, 12, 31, tzinfo=UTC),
    )
    hello, _ = await repo.add_incoming(
        default.id, bob.id, 10, date=T0 + timedelta(hours=1), text="hello"
    )
    await repo.add_incoming(
        default.id,
        bob.id,
        11,
        date=T0 + timedelta(hours=1, minutes=1),
        kind="voice",
        transcript="Call me about the INVOICE",
        duration=3.0,
    )
    handed = await repo.create_reply(  # an older job handed to the owner: not the newest
        default.id, bob.id, reply_at=T0 + timedelta(hours=1), message_ids=[hello.id],
        state="skipped", reason="escalated",
    )
    failed = await repo.create_reply(
        default.id,
        bob.id,
        reply_at=T0 + timedelta(hours=1, seconds=30),
        message_ids=[hello.id],
        state="scheduled",
        decision={"action": "reply", "explain": ["in working hours", "contact"], "delay_s": 30.0},
    )
    await repo.update_reply(failed.id, state="failed", failure="permanent", attempts=1)

    alice, _ = await repo.upsert_chat(default.id, 1001, kind="private", title="Алиса")
    await repo.update_chat(alice.id, last_incoming_at=T0 + timedelta(hours=2))
    question, _ = await repo.add_incoming(
        default.id, alice.id, 20, date=T0 + timedelta(hours=2), text="ПРИВЕТ, заказ готов?"
    )
    await repo.create_reply(
        default.id,
        alice.id,
        reply_at=T0 + timedelta(hours=2),
        message_ids=[question.id],
        state="skipped",
        reason="escalated",
        decision={"action": "reply", "explain": ["asks for the owner"]},
    )
    assert handed.id < failed.id
    return {"failed_reply": failed.id}


async def listed(client, query: str = "", headers=AUTH) -> list[tuple[str, int]]:
    response = await client.get("/conversations" + query, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    if "limit=" not in query:  # the whole list: the total counts the same filters
        assert body["total"] == len(body["conversations"])
    return [(c["account"], c["chat"]) for c in body["conversations"]]


async def test_every_channel_in_one_list_newest_first(client, seeded) -> None:
    response = await client.get("/conversations", headers=AUTH)
    body = await response.json()
    assert [(c["account"], c["channel"], c["chat"]) for c in body["conversations"]] == [
        ("default", "telegram", 1001),
        ("default", "telegram", 1002),
        ("web", "http_chat", 5),
    ]
    alice, bob, visitor = body["conversations"]
    assert (alice["escalated"], alice["paused"], alice["failed"]) == (True, False, 0)
    assert alice["last_text"] == "ПРИВЕТ, заказ готов?"
    assert (bob["escalated"], bob["paused"], bob["failed"]) == (False, True, 1)
    assert bob["last_text"] == "Call me about the INVOICE"  # a voice note: its transcript
    assert visitor["title"] == "Visitor" and body["total"] == 3
    assert [c["chat_key"] for c in body["conversations"]] == ["1001", "1002", "5"]


async def test_filters(client, seeded) -> None:
    assert await listed(client, "?channel=http_chat") == [("web", 5)]
    assert await listed(client, "?channel=talkme") == []
    assert await listed(client, "?state=paused") == [("default", 1002)]
    assert await listed(client, "?state=escalated") == [("default", 1001)]
    assert await listed(client, "?state=failed") == [("default", 1002)]
    assert await listed(client, "?account=web") == [("web", 5)]
    assert await listed(client, "?account=default&chat=1002") == [("default", 1002)]
    assert await listed(client, "?limit=1&offset=1") == [("default", 1002)]
    body = await (await client.get("/conversations?limit=1&offset=1", headers=AUTH)).json()
    assert body["total"] == 3
    body = await (await client.get("/conversations?limit=1&offset=7", headers=AUTH)).json()
    assert (body["conversations"], body["total"]) == ([], 3)
    body = await (await client.get("/conversations?limit=1&state=failed", headers=AUTH)).json()
    assert body["total"] == 1


async def test_search_ignores_case_in_any_script(client, seeded) -> None:
    assert await listed(client, "?q=привет") == [("default", 1001)]  # stored as ПРИВЕТ
    assert await listed(client, "?q=ЗАКАЗ") == [("default", 1001)]
    assert await listed(client, "?q=алиса") == [("default", 1001)]  # the title
    assert await listed(client, "?q=invoice") == [("default", 1002)]  # a transcript
    assert await listed(client, "?q=visitor") == [("web", 5)]
    assert await listed(client, "?q=THREAD-4") == [("web", 5)]  # the channel's thread id
    assert await listed(client, "?q=100%25") == [("web", 5)]  # "%" is a character, not a pattern
    assert await listed(client, "?q=%25") == [("web", 5)]
    assert await listed(client, "?q=nothing-like-this") == []
    assert await listed(client, "?q=straße") == [("web", 5)]  # not ASCII: folded alike on both


async def test_bad_filters_are_refused(client, seeded) -> None:
    for query in ("?state=lost", "?channel=fax", "?limit=0", "?q="):
        response = await client.get("/conversations" + query, headers=AUTH)
        assert response.status == 422, query
        assert_error(await response.json(), "validation_error", response.headers["X-Request-ID"])


async def test_a_bound_key_lists_its_own_account_only(client, seeded) -> None:
    key = (await create(client, name="web-admin", scopes=["admin"], account="web"))["key"]
    assert await listed(client, headers=bearer(key)) == [("web", 5)]
    response = await client.get("/conversations?account=default", headers=bearer(key))
    assert response.status == 404


async def test_messages_explain_their_reply_jobs(client, seeded) -> None:
    response = await client.get("/messages?chat=1002", headers=AUTH)
    body = await response.json()
    assert [m["kind"] for m in body["messages"]] == ["voice", "text"]
    [reply] = body["replies"]
    assert body["messages"][1]["reply_id"] == reply["id"] == seeded["failed_reply"]
    assert reply["state"] == "failed" and reply["failure"] == "permanent"
    assert reply["action"] == "reply" and reply["explain"] == ["in working hours", "contact"]
    assert reply["delay_s"] == 30.0 and reply["attempts"] == 1
    assert reply["reply_at"].startswith("2026-11-20T11:00:30")
    escalated = await (await client.get("/messages?chat=1001", headers=AUTH)).json()
    assert [(r["state"], r["reason"]) for r in escalated["replies"]] == [("skipped", "escalated")]


async def test_audio_of_a_message_that_is_not_a_voice_note_is_404(client, seeded) -> None:
    body = await (await client.get("/messages?chat=1002", headers=AUTH)).json()
    text = body["messages"][1]["id"]
    response = await client.get(f"/messages/{text}/audio", headers=AUTH)
    assert response.status == 404
    assert_error(await response.json(), "not_found", response.headers["X-Request-ID"])
    response = await client.get("/messages/999999/audio", headers=AUTH)
    assert response.status == 404
    # another channel's voice note: nothing on Telegram to read it from (and no account opened)
    web = await (await client.get("/messages?chat=5&account=web", headers=AUTH)).json()
    voice = next(m["id"] for m in web["messages"] if m["kind"] == "voice")
    for account in ("web", "default"):  # its own instance; an account it does not belong to
        response = await client.get(f"/messages/{voice}/audio?account={account}", headers=AUTH)
        assert response.status == 404, account


async def test_channels_lists_the_other_channels_instances(client, seeded) -> None:
    body = await (await client.get("/channels", headers=AUTH)).json()
    assert [(c["name"], c["channel"], c["twin"]) for c in body["channels"]] == [
        ("web", "http_chat", "default")
    ]
    key = (await create(client, name="shop-admin", scopes=["admin"], account="default"))["key"]
    body = await (await client.get("/channels", headers=bearer(key))).json()
    assert body["channels"] == []  # bound to another account
