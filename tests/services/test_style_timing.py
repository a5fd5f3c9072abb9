"""The owner's reply timing end to end inside the daemon's services: `build_style` learns it
from history page by page (resumable, the same as one pass), and with `[humanize] learned` the
pipeline draws the read delay from the stored profile (re-read when it is rebuilt)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.db.conftest import account, db, migrated_url, repo  # noqa: F401  (fixtures)
from tests.fakes import WatchedClock, incoming, start_twin, twin_settings
from twin import keys
from twin.adapters.telegram.records import OwnPage
from twin.domain.style import StyleAccumulator
from twin.domain.timing import LATENCY_CAP_S, MIN_SAMPLES, TimingAccumulator
from twin.services.style import build_style, load_accumulator, stored_style

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


class HistoryAccount:
    """The three calls `build_style` makes of a Telegram account, over scripted chats:
    {chat: [(id, at, out, text)]} oldest first; pages newest first as Telegram gives them."""

    def __init__(self, chats: dict[int, list[tuple[int, datetime, bool, str]]]) -> None:
        self.chats = chats

    async def private_chat_ids(self) -> list[int]:
        return list(self.chats)

    async def history_size(self, chat: int) -> int:
        return len(self.chats[chat])

    async def own_messages(self, chat: int, *, before_id: int = 0, limit: int = 100) -> OwnPage:
        from twin.domain.timing import HistoryMessage

        newest_first = [m for m in reversed(self.chats[chat]) if not before_id or m[0] < before_id]
        page = newest_first[:limit]
        return OwnPage(
            [(i, text, at) for i, at, out, text in page if out],
            len(page),
            page[-1][0] if len(page) == limit else None,
            tuple(HistoryMessage(i, at, out, len(text)) for i, at, out, text in page),
        )


def conversation(
    seed: int, exchanges: int
) -> tuple[list[tuple[int, datetime, bool, str]], list[float], int]:
    """Random exchanges: one to three contact messages, the owner's reply after a random time
    (sometimes over the cap), sometimes a second owner message; with the latencies measurable
    (from the first contact message of the exchange) and how many were over the cap."""
    rng = random.Random(seed)
    at, messages, latencies, over = START, [], [], 0
    for _ in range(exchanges):
        first = None
        for _ in range(rng.randint(1, 3)):
            at += timedelta(seconds=rng.randint(5, 600))
            first = first or at
            messages.append((at, False, "вопрос"))
        at += timedelta(seconds=rng.choice([rng.randint(10, 3000), LATENCY_CAP_S + 60]))
        assert first is not None
        if (at - first).total_seconds() <= LATENCY_CAP_S:
            latencies.append((at - first).total_seconds())
        else:
            over += 1
        messages.append((at, True, "ответ " * rng.randint(1, 5)))
        if rng.random() < 0.3:  # not a reply: the owner's second message
            at += timedelta(seconds=rng.randint(2, 60))
            messages.append((at, True, "и ещё"))
        at += timedelta(hours=rng.randint(1, 20))
    return [(n + 1, *m) for n, m in enumerate(messages)], latencies, over


async def test_build_learns_reply_timing_and_a_resumed_build_learns_the_same(
    repo: Any,  # noqa: F811
    account: Any,  # noqa: F811
) -> None:
    first, first_latencies, first_over = conversation(1, 60)  # over 100 messages: 2 pages
    second, second_latencies, second_over = conversation(2, 25)
    history = HistoryAccount({501: first, 502: second})
    own = sum(1 for chat in (first, second) for m in chat if m[2])

    # in pieces, the --limit falling inside pages, each run resuming from the stored cursor
    for limit in (7, 60, 61, 130):  # 130: more than the owner wrote, every chat read
        await build_style(history, repo, account.id, limit=limit, timezone="Europe/Berlin")
    pieces = await load_accumulator(repo, account.id)
    assert pieces is not None and pieces.count == own

    await build_style(history, repo, account.id, limit=500, restart=True, timezone="Europe/Berlin")
    whole = await load_accumulator(repo, account.id)
    assert whole is not None
    assert pieces.timing.to_dict() == whole.timing.to_dict()
    timing = whole.timing
    assert timing.timezone == "Europe/Berlin"
    assert timing.over_cap == first_over + second_over > 0
    assert timing.samples == len(first_latencies) + len(second_latencies)
    assert timing.contacts[501].count == len(first_latencies)
    assert timing.contacts[502].count == len(second_latencies)
    kept = sorted(v for bucket in timing.buckets.values() for v in bucket.items.values())
    assert kept == sorted(first_latencies + second_latencies)  # no hour holds over 64
    assert timing.typing.count > 0

    stored = await stored_style(repo, account.id)
    assert stored is not None
    profile, learned = stored
    assert profile.message_count == own
    assert learned.samples == timing.samples
    assert timing.contacts[502].count < MIN_SAMPLES <= timing.contacts[501].count
    assert learned.contacts.keys() == {501}  # 502: too few replies for their own timing


async def test_learned_read_delay_in_the_pipeline_follows_the_stored_profile(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(
        engine_url,
        tmp_path,
        humanize={"enabled": True, "learned": True, "read_delay_max": 3600, "typing_cps": 0},
    )
    async with start_twin(settings, clock=clock) as twin:
        account_id = await twin.app[keys.DIRECTORY].id_of("default")

        async def store_profile(seconds: float) -> None:
            style = StyleAccumulator()
            style.timing = TimingAccumulator()
            for n in range(25):  # chat 501's own timing: every reply after `seconds`
                style.timing.add_latency(501, n, START + timedelta(hours=n), seconds)
            await twin.repo.put_style_profile(account_id, style.to_dict())

        async def scheduled(text: str, chat: int) -> tuple[float, list[str]]:
            message = incoming(text, chat=chat, at=clock.now())
            assert await twin.intake.incoming(message)
            event = await twin.recorder.wait_for("reply.scheduled", message_id=message.message_id)
            return event.data["delay_s"], event.data["explain"]

        await store_profile(240)
        delay, explain = await scheduled("hi", chat=501)
        assert delay == 240
        assert any("learned: owner's median for this contact is 4.0 min" in e for e in explain)

        # another contact: the 25 replies are at 25 different hours: "any time"
        delay, explain = await scheduled("hello", chat=777)
        assert delay == 240
        assert any("learned: owner's median for any time is 4.0 min" in e for e in explain)

        await clock.advance(1)  # the profile's version is when it was written
        await store_profile(600)  # rebuilt: the next decision reads the new version
        delay, explain = await scheduled("still there?", chat=778)
        assert delay == 600
