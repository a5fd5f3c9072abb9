"""The owner's learned reply timing (twin.domain.timing): what is measured, bounded mergeable
state, fallbacks, and draws that follow the measured sample (Kolmogorov–Smirnov)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.decide import AccountPolicy, Action, ChatState, decide
from twin.domain.models import ChatKind, IncomingMessage, Sender
from twin.domain.policies.delays import HumanizeConfig, read_delay, typing_duration
from twin.domain.style import OwnerMessage, StyleAccumulator
from twin.domain.timing import (
    BUCKET_SAMPLE,
    LATENCY_CAP_S,
    MIN_SAMPLES,
    HistoryMessage,
    LearnedTiming,
    ReplyScan,
    TimingAccumulator,
    draw_latency,
)

TUE_14 = datetime(2025, 1, 7, 14, 0, tzinfo=UTC)  # a Tuesday
WEEK = timedelta(days=7)


# -- the Kolmogorov–Smirnov test (no scipy) ---------------------------------------------------


def ks_statistic(a: list[float], b: list[float]) -> float:
    """Two-sample KS statistic: the largest gap between the two empirical CDFs."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    gap = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] <= x:
            i += 1
        while j < len(b) and b[j] <= x:
            j += 1
        gap = max(gap, abs(i / len(a) - j / len(b)))
    return gap


def ks_critical(n: int, m: int, alpha: float = 0.001) -> float:
    """The two-sample critical value c(α)·√((n+m)/(n·m)), c(α) = √(−ln(α/2)/2)."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def test_ks_statistic_itself() -> None:
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0
    assert ks_statistic([1, 2], [3, 4]) == 1
    assert ks_statistic([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)
    assert ks_critical(100, 100, 0.05) == pytest.approx(1.358 * math.sqrt(2 / 100), rel=1e-3)


# -- helpers ------------------------------------------------------------------------------------


def filled(
    latencies: list[tuple[datetime, float]], *, chat: int = 1, timezone: str = "UTC"
) -> TimingAccumulator:
    """An accumulator holding these (contact message time, latency) replies."""
    acc = TimingAccumulator(timezone)
    for n, (at, seconds) in enumerate(latencies):
        acc.add_latency(chat, n + 1, at, seconds)
    return acc


def lognormal(rng: random.Random, n: int, median: float = 180.0, sigma: float = 1.0) -> list[float]:
    return [float(round(rng.lognormvariate(math.log(median), sigma))) for _ in range(n)]


def chronological(
    events: list[tuple[int, bool, int]],
) -> tuple[list[tuple[int, float]], int, list[float]]:
    """Reference implementation over (seconds since start, out, chars) in time order:
    (answer id, latency) replies, how many were over the cap, typing speeds."""
    replies, over, typing = [], 0, []
    first_unanswered = None
    previous: tuple[int, bool] | None = None
    for index, (t, out, chars) in enumerate(events):
        if out:
            if first_unanswered is not None:
                latency = t - first_unanswered
                if latency > LATENCY_CAP_S:
                    over += 1
                else:
                    replies.append((index + 1, float(latency)))
                first_unanswered = None
            if previous is not None and previous[1] and 1 <= t - previous[0] <= 120 and chars >= 2:
                typing.append(chars / (t - previous[0]))
        elif first_unanswered is None:
            first_unanswered = t
        previous = (t, out)
    return replies, over, typing


def timeline(events: list[tuple[int, bool, int]], start: datetime) -> list[HistoryMessage]:
    """The events as history, newest first (ids grow with time)."""
    return [
        HistoryMessage(index + 1, start + timedelta(seconds=t), out, chars)
        for index, (t, out, chars) in reversed(list(enumerate(events)))
    ]


# -- what is measured ---------------------------------------------------------------------------


class TestMeasuring:
    def test_latency_counts_from_the_first_unanswered_contact_message(self) -> None:
        # contact 0 s, contact 60 s, owner 300 s, owner 310 s (not a reply), contact 400 s,
        # owner 460 s; a contact message before any answer of the owner ends the history
        events = [(0, False, 5), (60, False, 5), (300, True, 9), (310, True, 20)]
        events += [(400, False, 3), (460, True, 4), (500, False, 3)]
        acc = TimingAccumulator()
        scan = ReplyScan()
        scan.feed(acc, 7, timeline(events, TUE_14))
        scan.finish(acc, 7)
        values = sorted(v for b in acc.buckets.values() for v in b.items.values())
        assert values == [60.0, 300.0]  # 460-400 and 300-0: the 310 s message is no reply
        assert acc.contacts[7].count == 2
        assert acc.typing.count == 1  # 20 chars 10 s after the owner's previous message
        assert list(acc.typing.items.values()) == [2.0]

    def test_the_twins_own_replies_are_answers_but_never_the_owners_timing(self) -> None:
        # contact 0 s, the twin 8 s, contact 100 s, owner 160 s, the twin 170 s (20 chars,
        # 10 s after the owner), contact 200 s, the owner 260 s
        events = [(0, False, 5), (8, True, 9), (100, False, 5), (160, True, 4), (170, True, 20)]
        events += [(200, False, 3), (260, True, 4)]
        history = timeline(events, TUE_14)
        twin_ids = {2, 5}
        history = [replace(m, twin=True) if m.id in twin_ids else m for m in history]
        acc = TimingAccumulator()
        scan = ReplyScan()
        scan.feed(acc, 7, history)
        scan.finish(acc, 7)
        values = sorted(v for b in acc.buckets.values() for v in b.items.values())
        assert values == [60.0, 60.0]  # 160-100 and 260-200; never 8 s (the twin's pace)
        assert acc.typing.count == 0  # the twin's 20 chars after the owner are not typing

    def test_gaps_over_the_cap_are_not_replies(self) -> None:
        events = [(0, False, 5), (LATENCY_CAP_S + 1, True, 5)]
        acc = TimingAccumulator()
        scan = ReplyScan()
        scan.feed(acc, 7, timeline(events, TUE_14))
        scan.finish(acc, 7)
        assert acc.samples == 0 and acc.over_cap == 1

    def test_filed_under_the_contact_messages_hour_in_the_owners_zone(self) -> None:
        # 13:59 UTC on Tuesday is 14:59 in Berlin (winter): bucket Tue 14h; the answer at
        # 15:01 Berlin time does not move it
        acc = filled([(TUE_14 - timedelta(minutes=1), 120.0)], timezone="Europe/Berlin")
        assert list(acc.buckets) == [1 * 24 + 14]

    @settings(max_examples=150, deadline=None)
    @given(
        gaps=st.lists(
            st.tuples(
                st.sampled_from([0, 1, 5, 30, 200, 3000, LATENCY_CAP_S, LATENCY_CAP_S + 5]),
                st.booleans(),
                st.integers(0, 40),
            ),
            max_size=60,
        ),
        cuts=st.lists(st.integers(1, 10), max_size=20),
    )
    def test_pages_and_resumes_measure_like_one_chronological_pass(
        self, gaps: list[tuple[int, bool, int]], cuts: list[int]
    ) -> None:
        t, events = 0, []
        for gap, out, chars in gaps:
            t += gap
            events.append((t, out, chars))
        replies, over, typing = chronological(events)
        history = timeline(events, TUE_14)
        acc = TimingAccumulator()
        state = ReplyScan().to_dict()
        position = 0
        for cut in [*cuts, len(history)]:  # pages of any size, state through JSON between
            scan = ReplyScan.from_dict(json.loads(json.dumps(state)))
            scan.feed(acc, 3, history[position : position + cut])
            position += cut
            state = scan.to_dict()
        scan = ReplyScan.from_dict(state)
        scan.finish(acc, 3)
        assert acc.samples == len(replies) and acc.over_cap == over
        kept = sorted(v for b in acc.buckets.values() for v in b.items.values())
        if len(replies) <= BUCKET_SAMPLE:  # one hour of the week: all kept
            assert kept == sorted(v for _, v in replies)
        assert sorted(acc.typing.items.values()) == pytest.approx(sorted(typing))


# -- bounded, mergeable, persistent ------------------------------------------------------------


class TestState:
    def test_bounded_per_bucket_with_exact_counts(self) -> None:
        acc = filled([(TUE_14, float(n)) for n in range(500)])
        bucket = acc.buckets[38]
        assert bucket.count == 500 and len(bucket.items) == BUCKET_SAMPLE
        assert len(acc.contacts[1].items) < 500

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.tuples(st.integers(0, 400), st.integers(0, 5000)), max_size=300),
        st.integers(0, 300),
    )
    def test_merge_equals_one_pass_whatever_the_split(
        self, replies: list[tuple[int, int]], split: int
    ) -> None:
        def acc_of(rows: list[tuple[int, tuple[int, int]]]) -> TimingAccumulator:
            acc = TimingAccumulator("Europe/Kyiv")
            for n, (hours, seconds) in rows:
                acc.add_latency(n % 3, n, TUE_14 + timedelta(hours=hours), seconds)
                acc.add_typing(n % 3, n, seconds / 100)
            return acc

        rows = list(enumerate(replies))
        whole = acc_of(rows)
        merged = acc_of(rows[split:]).merge(acc_of(rows[:split]))
        assert merged.to_dict() == whole.to_dict()

    def test_round_trip_through_json_inside_the_style_state(self) -> None:
        style = StyleAccumulator()
        style.add([OwnerMessage(text="привет", chat_id=5, at=TUE_14)])
        style.timing = filled([(TUE_14, 30.0), (TUE_14 + WEEK, 45.0)], chat=5)
        style.timing.add_typing(5, 9, 4.5)
        data = json.loads(json.dumps(style.to_dict()))
        back = StyleAccumulator.from_dict(data)
        assert back.timing.to_dict() == style.timing.to_dict()
        assert back.timing.learned(min_samples=1).level(TUE_14, 5) is not None

    def test_a_state_from_before_timing_loads_empty(self) -> None:
        data = StyleAccumulator().to_dict()
        del data["timing"]
        assert StyleAccumulator.from_dict(data).timing.empty

    def test_different_zones_do_not_merge(self) -> None:
        with pytest.raises(ValueError, match="Europe/Berlin"):
            filled([(TUE_14, 1.0)]).merge(filled([(TUE_14, 1.0)], timezone="Europe/Berlin"))


# -- fallbacks ----------------------------------------------------------------------------------


class TestFallbacks:
    def test_enough_in_the_hour_of_the_week(self) -> None:
        acc = filled([(TUE_14 + timedelta(minutes=n), 60.0) for n in range(MIN_SAMPLES)])
        level = acc.learned().level(TUE_14)
        assert level is not None and level.label == "Tue 14h" and level.samples == MIN_SAMPLES

    def test_sparse_hour_of_the_week_falls_back_to_the_hour_on_any_day(self) -> None:
        # 10 on Tuesday and 10 on Thursday, both at 14h: neither alone is enough
        replies = [(TUE_14 + timedelta(minutes=n), 60.0) for n in range(10)]
        replies += [(TUE_14 + timedelta(days=2, minutes=n), 600.0) for n in range(10)]
        learned = filled(replies).learned()
        level = learned.level(TUE_14 + timedelta(days=1))  # Wednesday 14h: nothing of its own
        assert level is not None and level.label == "14h on any day" and level.samples == 20
        assert level.median_s == 60.0  # the lower median of 10 × 60 s and 10 × 600 s
        later = learned.level(TUE_14 + timedelta(hours=3))  # 17h: none on any day
        assert later is not None and later.label == "any time"

    def test_then_any_time_then_nothing(self) -> None:
        replies = [(TUE_14 + timedelta(hours=n), 60.0) for n in range(MIN_SAMPLES)]
        learned = filled(replies).learned()
        level = learned.level(TUE_14 + timedelta(hours=3))
        assert level is not None and level.label == "any time"
        assert filled(replies[:-1]).learned().level(TUE_14) is None

    def test_a_contact_with_enough_replies_has_their_own(self) -> None:
        acc = filled([(TUE_14 + timedelta(hours=n), 600.0) for n in range(MIN_SAMPLES)], chat=9)
        acc.merge(filled([(TUE_14 + timedelta(hours=n), 6.0) for n in range(5)], chat=8))
        learned = acc.learned()
        assert learned.contacts.keys() == {9}
        assert learned.contacts[9].label == "this contact"
        assert draw_latency(learned, random.Random(1), at=TUE_14, chat_id=9) == (
            600.0,
            learned.contacts[9],
        )
        drawn = draw_latency(learned, random.Random(1), at=TUE_14, chat_id=8)
        assert drawn is not None and drawn[1].label != "this contact"  # 5: too few of their own


# -- drawing ------------------------------------------------------------------------------------


class TestDraw:
    def test_draws_follow_the_measured_sample(self) -> None:
        """KS: 2000 draws against the 300 latencies measured (spread over the week, so every
        draw mixes all hours) are indistinguishable at α = 0.001."""
        source_rng = random.Random(2024)
        source = lognormal(source_rng, 300)
        starts = [TUE_14 + timedelta(hours=source_rng.randrange(168)) for _ in source]
        learned = filled(list(zip(starts, source, strict=True))).learned()
        rng = random.Random(7)
        draws = []
        for _ in range(2000):
            at = TUE_14 + timedelta(hours=rng.randrange(168))
            drawn = draw_latency(learned, rng, at=at)
            assert drawn is not None
            draws.append(drawn[0])
        assert ks_statistic(draws, source) < ks_critical(len(draws), len(source))
        # …and the test can tell another distribution apart: the same draws, 40% slower
        slower = [d * 1.4 for d in draws]
        assert ks_statistic(slower, source) > ks_critical(len(draws), len(source))

    def test_draws_of_one_hour_follow_its_own_sample(self) -> None:
        source_rng = random.Random(5)
        tuesday = lognormal(source_rng, 60, median=90)  # within one bucket's sample
        other = lognormal(source_rng, 200, median=2000)  # the rest of the week, much slower
        replies = [(TUE_14, v) for v in tuesday]
        replies += [(TUE_14 + timedelta(hours=1 + n % 100), v) for n, v in enumerate(other)]
        learned = filled(replies).learned()
        rng = random.Random(11)
        draws = []
        for _ in range(1500):
            drawn = draw_latency(learned, rng, at=TUE_14 + WEEK)  # another Tuesday, 14h
            assert drawn is not None and drawn[1].label == "Tue 14h"
            draws.append(drawn[0])
        assert ks_statistic(draws, tuesday) < ks_critical(len(draws), len(tuesday))
        assert ks_statistic(draws, tuesday + other) > ks_critical(len(draws), 260)

    def test_a_mixture_weighs_buckets_by_what_they_measured_not_what_they_kept(self) -> None:
        # Monday 14h measured 600 (keeps 64) at ~100 s, Thursday 14h 30 at ~5000 s;
        # Wednesday 14h has none: drawn from "14h on any day", Thursday 30/630 of the time
        replies = [(TUE_14 - timedelta(days=1), 100.0 + n % 7) for n in range(600)]
        replies += [(TUE_14 + timedelta(days=2), 5000.0 + n) for n in range(30)]
        learned = filled(replies).learned()
        rng = random.Random(3)
        n = 20_000
        slow = 0
        for _ in range(n):
            drawn = draw_latency(learned, rng, at=TUE_14 + timedelta(days=1))
            assert drawn is not None and drawn[1].label == "14h on any day"
            slow += drawn[0] >= 5000
        p = 30 / 630
        assert abs(slow - n * p) < 5 * math.sqrt(n * p * (1 - p))

    def test_seeded_draws_repeat(self) -> None:
        learned = filled([(TUE_14, float(v)) for v in range(40)]).learned()
        first = [draw_latency(learned, random.Random(9), at=TUE_14) for _ in range(3)]
        assert first[0] == first[1] == first[2]


# -- reaching the decision -----------------------------------------------------------------------


def learned_timing(values: list[float], *, chat: int = 1) -> LearnedTiming:
    return filled([(TUE_14 + timedelta(minutes=n), v) for n, v in enumerate(values)]).learned()


class TestReadDelay:
    def test_the_reason_names_the_learned_median(self) -> None:
        cfg = HumanizeConfig(learned=True, timing=learned_timing([192.0] * 30), read_delay_max=3600)
        delay = read_delay(cfg, random.Random(1), now_local=TUE_14 + WEEK, chat_active=True)
        assert delay.seconds == 192.0  # no active-chat or night factor on the owner's own data
        assert delay.reason == (
            "read delay 192.0 s: learned: owner's median for Tue 14h is 3.2 min "
            "(30 replies), drew 3.2 min"
        )

    @settings(max_examples=60, deadline=None)
    @given(
        values=st.lists(st.floats(0, LATENCY_CAP_S), min_size=MIN_SAMPLES, max_size=80),
        low=st.floats(0, 100),
        span=st.floats(0, 2000),
        seed=st.integers(0, 2**32),
    )
    def test_always_clamped_to_the_configured_min_and_max(
        self, values: list[float], low: float, span: float, seed: int
    ) -> None:
        cfg = HumanizeConfig(
            learned=True,
            timing=learned_timing(values),
            read_delay_min=low,
            read_delay_max=low + span,
        )
        delay = read_delay(cfg, random.Random(seed), now_local=TUE_14, chat_active=False)
        assert low <= delay.seconds <= low + span
        drawn = draw_latency(cfg.timing, random.Random(seed), at=TUE_14)  # type: ignore[arg-type]
        assert drawn is not None and drawn[0] in values
        if not low <= drawn[0] <= low + span:
            assert "clamped to" in delay.reason

    def test_too_few_replies_fall_back_to_the_configured_distribution(self) -> None:
        cfg = HumanizeConfig(learned=True, timing=learned_timing([50.0] * 5), read_delay_sigma=0)
        delay = read_delay(cfg, random.Random(1), now_local=TUE_14, chat_active=False)
        assert delay.seconds == 8.0
        assert delay.reason.startswith("read delay 8.0 s: learned: too few replies measured (5)")

    def test_not_learned_ignores_the_timing(self) -> None:
        plain = HumanizeConfig()
        attached = HumanizeConfig(timing=learned_timing([500.0] * 30))
        args = {"now_local": TUE_14, "chat_active": False}
        assert read_delay(attached, random.Random(4), **args) == read_delay(  # type: ignore[arg-type]
            plain,
            random.Random(4),
            **args,  # type: ignore[arg-type]
        )

    def test_typing_at_the_learned_speed(self) -> None:
        acc = TimingAccumulator()
        for n in range(MIN_SAMPLES):
            acc.add_typing(1, n, 3.0)
        cfg = HumanizeConfig(learned=True, timing=acc.learned(), typing_jitter=0)
        delay = typing_duration(cfg, random.Random(1), "x" * 30)
        assert delay.seconds == 10.0
        assert "3.0 cps (learned from 20 owner messages)" in delay.reason
        voice = typing_duration(cfg, random.Random(1), "x" * 28, voice=True)
        assert voice.seconds == 2.0  # recording speed is not learned

    def test_decide_draws_the_contacts_own_timing(self) -> None:
        acc = filled([(TUE_14 + timedelta(hours=n), 240.0) for n in range(25)], chat=42)
        cfg = HumanizeConfig(learned=True, timing=acc.learned(), read_delay_max=3600)
        policy = AccountPolicy(humanize=cfg, debounce_s=0, debounce_max_s=0)
        sender = Sender(id=42, name="Alice", username="alice", is_contact=True, is_bot=False)
        message = IncomingMessage(
            account="main",
            chat_id=42,
            chat_kind=ChatKind.PRIVATE,
            message_id=7,
            sender=sender,
            date=TUE_14,
            text="hi",
        )
        decision = decide(policy, message, ChatState(), now=TUE_14, rng=random.Random(1))
        assert decision.action is Action.REPLY
        assert decision.reply_at == TUE_14 + timedelta(minutes=4)
        assert any(
            "owner's median for this contact is 4.0 min" in line for line in decision.explain
        )


def test_describe_and_counters() -> None:
    rng = random.Random(1)
    learned = filled([(TUE_14, v) for v in lognormal(rng, 40)]).learned()
    text = learned.describe()
    assert text.startswith("Reply timing (UTC): 40 replies measured, median ")
    assert "typing speed not measurable" in text
    assert learned.measured[38] == 40 and sum(learned.measured) == 40
    assert Counter(level is None for level in learned.hours)[False] == 168  # any time: all hours
