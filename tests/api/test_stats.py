"""GET /stats on the real app: exact figures from seeded data, on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from tests.api.conftest import AUTH, assert_error
from tests.api.test_control import control_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys
from twin.db.repo.stats import percentile
from twin.db.tables import Reply


def at(day: int, hh: int, mm: int = 0, ss: int = 0, month: int = 5) -> datetime:
    return datetime(2025, month, day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
async def client(engine_url, make_client, tmp_path):  # noqa: F811  (engine_url is a fixture)
    # engine_url is set up first, so it drops the PostgreSQL schema after the app has closed.
    return await make_client(settings=control_settings(engine_url, tmp_path), real_database=True)


class Seeder:
    """Seeds through the Repository; only `created_at` (set by the database) is adjusted by SQL."""

    def __init__(self, app) -> None:
        self.db = app[keys.DATABASE]
        self.repo = self.db.repo
        self.tg_id = 0

    async def chat(self, account: str, peer: int):
        account_id = (await self.repo.get_or_create_account(account)).id
        chat, _ = await self.repo.upsert_chat(account_id, peer, title=f"peer {peer}")
        return chat

    async def incoming(self, chat, date_: datetime, *, state="received", reason=None, **usage):
        self.tg_id += 1
        message, _ = await self.repo.add_incoming(
            chat.account_id, chat.id, self.tg_id, date=date_, text="hi"
        )
        fields = {"state": state, "state_reason": reason, **usage}
        return await self.repo.update_message(message.id, **fields)

    async def reply(
        self, chat, messages, *, created: datetime, state: str, finished: datetime | None,
        reason: str | None = None, action: str = "reply", **usage,
    ):
        # Created in its final state: the app's reply worker never sees a due job.
        reply = await self.repo.create_reply(
            chat.account_id, chat.id, reply_at=created, message_ids=[m.id for m in messages],
            decision={"action": action, "explain": ["seeded"]}, state=state, reason=reason,
        )
        usage["finished_at"] = finished  # None: a row without it (counted by created_at)
        reply = await self.repo.update_reply(reply.id, **usage)
        await self.set_created(reply.id, created)
        return reply

    async def set_created(self, reply_id: int, created: datetime) -> None:
        table = Reply.__table__
        async with self.db.engine.begin() as connection:
            await connection.execute(
                sa.update(table).where(table.c.id == reply_id).values(created_at=created)
            )


async def seed(app) -> None:
    """Range 2025-05-01 .. 2025-05-04 (see the expected figures in the test)."""
    s = Seeder(app)
    alice = await s.chat("default", 1001)
    bob = await s.chat("default", 1002)

    # --- 2025-05-01 ---
    m1 = await s.incoming(alice, at(1, 10), state="sent")
    r1 = await s.reply(alice, [m1], created=at(1, 10), state="sent", finished=at(1, 10, 0, 30),
                       prompt_tokens=100, completion_tokens=20, cost_usd=0.001)
    await s.repo.add_outgoing(alice.account_id, alice.id, text="hello", reply_id=r1.id,
                              state="sent", date=at(1, 10, 0, 30))  # a bubble: not "received"
    m2 = await s.incoming(alice, at(1, 11), state="sent")
    m3 = await s.incoming(alice, at(1, 11, 0, 20), state="sent")
    await s.reply(alice, [m2, m3], created=at(1, 11), state="sent", finished=at(1, 11, 1, 30),
                  prompt_tokens=200, completion_tokens=40, cost_usd=0.002)
    await s.incoming(bob, at(1, 12), state="skipped", reason="outside_hours")  # no reply job
    m5 = await s.incoming(bob, at(1, 13), state="skipped", reason="escalated",
                          cost_usd=0.0005)  # a voice note's transcription
    await s.reply(bob, [m5], created=at(1, 13), state="skipped", reason="escalated",
                  finished=at(1, 13, 0, 40), prompt_tokens=50, completion_tokens=10,
                  cost_usd=0.0004)
    # Deferred on the 1st, sent on the 2nd: 40 s after the message.
    m6 = await s.incoming(alice, at(1, 23, 59, 30), state="sent")
    await s.reply(alice, [m6], created=at(1, 23, 59, 31), state="sent", action="defer",
                  finished=at(2, 0, 0, 10), prompt_tokens=10, completion_tokens=5,
                  cost_usd=0.0001)

    # --- 2025-05-02 ---
    m7 = await s.incoming(bob, at(2, 9), state="failed", reason="RateLimited")
    await s.reply(bob, [m7], created=at(2, 9), state="failed", reason="RateLimited",
                  finished=at(2, 9, 5), prompt_tokens=30, completion_tokens=0, cost_usd=0.0003)
    await s.incoming(bob, at(2, 10), state="skipped", reason="paused")
    await s.incoming(bob, at(2, 10, 30), state="skipped")  # no reason recorded
    m10 = await s.incoming(alice, at(2, 11), state="cancelled", reason="paused")
    await s.reply(alice, [m10], created=at(2, 11), state="cancelled", reason="paused",
                  finished=at(2, 11, 1))
    # A reply that answers no stored incoming message (a greeting): sent, but not timed.
    await s.reply(alice, [], created=at(2, 12), state="sent", finished=at(2, 12))
    # Deferred on the 2nd and still waiting (far in the future, so the worker leaves it).
    m11 = await s.incoming(bob, at(2, 20), state="scheduled")
    reply = await s.repo.create_reply(
        bob.account_id, bob.id, reply_at=datetime(2100, 1, 1, tzinfo=UTC),
        message_ids=[m11.id], decision={"action": "defer"},
    )
    await s.set_created(reply.id, at(2, 20))

    # --- 2025-05-03: skipped at decision time, never finished_at: counted by created_at ---
    await s.reply(bob, [], created=at(3, 10), state="skipped", reason="rate_limited_chat",
                  finished=None)

    # --- outside the range, or another account: never counted ---
    early = await s.incoming(alice, at(30, 23, 59, 59, month=4), state="sent", cost_usd=1.0)
    await s.reply(alice, [early], created=at(30, 23, 59, 59, month=4), state="sent",
                  finished=at(30, 23, 59, 59, month=4), prompt_tokens=999, cost_usd=1.0)
    late = await s.incoming(alice, at(5, 0), state="sent", cost_usd=1.0)
    await s.reply(alice, [late], created=at(5, 0), state="sent", finished=at(5, 0),
                  completion_tokens=999)
    stranger = await s.chat("other", 1001)
    foreign = await s.incoming(stranger, at(1, 10), state="sent", cost_usd=1.0)
    await s.reply(stranger, [foreign], created=at(1, 10), state="sent",
                  finished=at(1, 10, 0, 1), prompt_tokens=999)


def figures(**changed):
    base = {
        "received": 0, "replied": 0, "skipped": {}, "skipped_total": 0, "deferred": 0,
        "escalated": 0, "failed": 0, "cancelled": 0, "replies_timed": 0,
        "median_reply_seconds": None, "p95_reply_seconds": None, "prompt_tokens": 0,
        "completion_tokens": 0, "cost_usd": 0.0,
    }
    return {**base, **changed}


async def test_stats_counts_every_figure_per_day_and_in_total(client) -> None:
    await seed(client.app)
    response = await client.get(
        "/stats", params={"account": "default", "days": "4", "to": "2025-05-04"}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["account"], body["from"], body["to"]) == ("default", "2025-05-01", "2025-05-04")
    assert [day["date"] for day in body["days"]] == [
        "2025-05-01", "2025-05-02", "2025-05-03", "2025-05-04"
    ]
    days = [{k: v for k, v in day.items() if k != "date"} for day in body["days"]]
    assert days[0] == figures(
        received=6, replied=2, skipped={"escalated": 1, "outside_hours": 1}, skipped_total=2,
        deferred=1, escalated=1, replies_timed=2, median_reply_seconds=60.0,
        p95_reply_seconds=87.0, prompt_tokens=350, completion_tokens=70, cost_usd=0.0039,
    )
    assert days[1] == figures(
        received=5, replied=2, skipped={"paused": 1, "unknown": 1}, skipped_total=2,
        deferred=1, failed=1, cancelled=1, replies_timed=1, median_reply_seconds=40.0,
        p95_reply_seconds=40.0, prompt_tokens=40, completion_tokens=5, cost_usd=0.0004,
    )
    assert days[2] == figures(skipped={"rate_limited_chat": 1}, skipped_total=1)
    assert days[3] == figures()
    # p95 of [30, 40, 90] by linear interpolation: 40 + 0.9 * 50
    assert body["totals"] == figures(
        received=11, replied=4,
        skipped={"escalated": 1, "outside_hours": 1, "paused": 1, "rate_limited_chat": 1,
                 "unknown": 1},
        skipped_total=5, deferred=2, escalated=1, failed=1, cancelled=1, replies_timed=3,
        median_reply_seconds=40.0, p95_reply_seconds=85.0, prompt_tokens=390,
        completion_tokens=75, cost_usd=0.0043,
    )


async def test_stats_default_range_ends_today(client) -> None:
    before = datetime.now(UTC).date()
    response = await client.get("/stats", headers=AUTH)
    after = datetime.now(UTC).date()
    body = await response.json()
    assert response.status == 200
    assert date.fromisoformat(body["to"]) in (before, after)
    assert len(body["days"]) == 7
    assert date.fromisoformat(body["from"]) == date.fromisoformat(body["to"]) - timedelta(days=6)
    assert body["totals"] == figures()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"days": "0"}, "days"),
        ({"days": "367"}, "days"),
        ({"days": "a week"}, "days"),
        ({"to": "2025-13-01"}, "to"),
        ({"to": "0"}, "to"),  # not read as a Unix time: a date is YYYY-MM-DD
        ({"to": "2025-5-4"}, "to"),
        ({"to": "0000-01-01"}, "to"),
        ({"account": "no spaces"}, "account"),
        ({"dayz": "7"}, "dayz"),
    ],
)
async def test_stats_rejects_bad_parameters(client, params, field) -> None:
    response = await client.get("/stats", params=params, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert [detail["field"] for detail in error["details"]] == [field]


@pytest.mark.parametrize(
    ("to", "days", "start"),
    [
        ("1969-12-26", "7", "1969-12-20"),  # before the Unix epoch
        ("9999-12-31", "3", "9999-12-29"),  # the last day there is
        ("0001-01-02", "7", "0001-01-01"),  # the range is cut at the first day there is
    ],
)
async def test_stats_accepts_every_real_date(client, to, days, start) -> None:
    response = await client.get("/stats", params={"to": to, "days": days}, headers=AUTH)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["from"], body["to"]) == (start, to)
    assert body["days"][0]["date"] == start and body["days"][-1]["date"] == to
    assert body["totals"] == figures()


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=50))
def test_percentile_matches_the_standard_library(values) -> None:
    ordered = sorted(values)
    assert percentile(ordered, 0.5) == pytest.approx(statistics.median(values))
    expected = statistics.quantiles(values, n=20, method="inclusive")[18]
    assert percentile(ordered, 0.95) == pytest.approx(expected)


def test_percentile_edges() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0], 0.0) == 1.0
    assert percentile([1.0, 2.0], 1.0) == 2.0
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)
