"""decide() with the Telegram-Business rules: away modes and "only if offline", greetings at
most once per period, "All chats except…", and working hours that hold over any sequence of
messages (DST in two zones, holidays)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.test_decide import ALICE, EXACT, MON_NIGHT, MON_NOON, OFFICE, POLICY, message, run
from twin.domain.decide import (
    AccountPolicy,
    Action,
    ChatState,
    OutsideHoursMode,
    decide,
)
from twin.domain.models import SkipReason
from twin.domain.policies.away import AwayMode, AwayRule
from twin.domain.policies.recipients import RecipientRules
from twin.domain.policies.working_hours import WorkingHours, is_open

VACATION = AwayRule(
    mode=AwayMode.CUSTOM,
    start=datetime(2025, 1, 6, 0, 0, tzinfo=UTC),
    end=datetime(2025, 1, 13, 0, 0, tzinfo=UTC),
)


# A month closed from the second day: deferred replies wait longer than a greeting period.
VACATIONING = WorkingHours.from_config(
    "UTC",
    {day: "09:00-18:00" for day in ("mon", "tue", "wed", "thu", "fri")},
    closed=[("2025-01-07", "2025-02-06")],
)


def away_policy(rule: AwayRule, **kw: object) -> AccountPolicy:
    return replace(POLICY, away=rule, **kw)  # type: ignore[arg-type]


class TestAwayModes:
    def test_off_keeps_the_working_hours_alone(self) -> None:
        assert run(now=MON_NIGHT).action is Action.DEFER
        assert run().action is Action.REPLY

    def test_always_sends_it_even_within_working_hours(self) -> None:
        decision = run(away_policy(AwayRule(mode=AwayMode.ALWAYS)))
        assert decision.action is Action.AWAY
        assert decision.reply_at == MON_NOON
        assert decision.explain[-1] == "away = always; sending the away message now"

    def test_outside_hours_replaces_the_outside_hours_mode(self) -> None:
        policy = away_policy(AwayRule(mode=AwayMode.OUTSIDE_HOURS))  # outside_hours = defer
        night = run(policy, now=MON_NIGHT)
        assert night.action is Action.AWAY
        assert night.explain[-1] == (
            "outside working hours (Mon 21:00 UTC); away = outside_hours; "
            "sending the away message now"
        )
        assert run(policy).action is Action.REPLY

    def test_custom_range_only_inside_it(self) -> None:
        policy = away_policy(VACATION)
        assert run(policy).action is Action.AWAY
        after = datetime(2025, 1, 13, 12, 0, tzinfo=UTC)
        assert run(policy, now=after).action is Action.REPLY
        # outside the range the closed hours follow outside_hours as before
        assert run(policy, now=after.replace(hour=21)).action is Action.DEFER

    def test_the_older_outside_hours_away_still_works_next_to_a_custom_range(self) -> None:
        policy = away_policy(VACATION, outside_hours_mode=OutsideHoursMode.AWAY)
        after = datetime(2025, 1, 13, 21, 0, tzinfo=UTC)
        decision = run(policy, now=after)
        assert decision.action is Action.AWAY
        assert "outside_hours = away" in decision.explain[-1]

    def test_repeat_window_applies_to_every_mode(self) -> None:
        policy = away_policy(AwayRule(mode=AwayMode.ALWAYS), away_repeat_hours=12)
        sent = ChatState(last_away_at=MON_NOON - timedelta(hours=2))
        decision = run(policy, sent)
        assert decision.skip_reason is SkipReason.AWAY_ALREADY_SENT
        assert decision.explain[-1].startswith("skip (away_already_sent): away = always; ")


class TestOnlyIfOffline:
    RULE = AwayRule(mode=AwayMode.ALWAYS, offline_only=True, offline_minutes=10)

    def test_owner_active_withholds_the_away_message_and_says_why(self) -> None:
        chat = ChatState(owner_active_at=MON_NOON - timedelta(minutes=4))
        decision = run(away_policy(self.RULE), chat)
        assert decision.action is Action.SKIP
        assert decision.skip_reason is SkipReason.OWNER_ONLINE
        assert decision.explain[-1] == (
            "skip (owner_online): away = always; the owner was active 4 min ago "
            "(2025-01-06T11:56:00+00:00), within 10 min: no away message "
            "(away_only_if_offline = true)"
        )

    def test_owner_online_right_now(self) -> None:
        decision = run(away_policy(self.RULE), ChatState(owner_active_at=MON_NOON))
        assert decision.skip_reason is SkipReason.OWNER_ONLINE
        assert "active 0 min ago" in decision.explain[-1]

    def test_owner_away_long_enough_gets_the_away_message(self) -> None:
        chat = ChatState(owner_active_at=MON_NOON - timedelta(minutes=10))
        assert run(away_policy(self.RULE), chat).action is Action.AWAY
        assert run(away_policy(self.RULE), ChatState()).action is Action.AWAY

    def test_the_window_is_configurable(self) -> None:
        rule = replace(self.RULE, offline_minutes=30)
        chat = ChatState(owner_active_at=MON_NOON - timedelta(minutes=20))
        assert run(away_policy(rule), chat).skip_reason is SkipReason.OWNER_ONLINE

    def test_owner_activity_does_not_matter_when_no_away_message_is_due(self) -> None:
        chat = ChatState(owner_active_at=MON_NOON)
        rule = replace(self.RULE, mode=AwayMode.OUTSIDE_HOURS)
        assert run(away_policy(rule), chat).action is Action.REPLY
        assert run(POLICY, chat, now=MON_NIGHT).action is Action.DEFER

    def test_only_if_offline_also_governs_the_older_outside_hours_away(self) -> None:
        rule = AwayRule(offline_only=True)
        policy = away_policy(rule, outside_hours_mode=OutsideHoursMode.AWAY)
        chat = ChatState(owner_active_at=MON_NIGHT - timedelta(minutes=1))
        assert run(policy, chat, now=MON_NIGHT).skip_reason is SkipReason.OWNER_ONLINE

    def test_recipient_rules_and_pause_come_first(self) -> None:
        policy = away_policy(self.RULE, recipients=RecipientRules(exclude=frozenset({42})))
        chat = ChatState(owner_active_at=MON_NOON)
        assert run(policy, chat).skip_reason is SkipReason.EXCLUDED
        paused = replace(chat, paused_until=MON_NOON + timedelta(hours=1))
        assert run(away_policy(self.RULE), paused).skip_reason is SkipReason.PAUSED


class TestGreeting:
    POLICY = replace(POLICY, greeting_after_days=7)

    def test_silence_counts_messages_either_way(self) -> None:
        contact_silent = MON_NOON - timedelta(days=10)
        owner_wrote = ChatState(
            last_incoming_at=contact_silent, last_outgoing_at=MON_NOON - timedelta(days=2)
        )
        assert not run(self.POLICY, owner_wrote).greeting
        silent = replace(owner_wrote, last_outgoing_at=MON_NOON - timedelta(days=8))
        decision = run(self.POLICY, silent)
        assert decision.greeting
        assert (
            "greeting: no message in this chat for 8.0 days (greeting_after_days = 7)"
            in decision.explain
        )

    def test_a_greeting_waiting_in_a_pending_reply_is_not_repeated(self) -> None:
        chat = ChatState(last_incoming_at=MON_NOON - timedelta(days=30), greeting_pending=True)
        assert not run(self.POLICY, chat, now=MON_NIGHT).greeting

    def test_any_number_of_days(self) -> None:
        policy = replace(POLICY, greeting_after_days=3)
        chat = ChatState(last_incoming_at=MON_NOON - timedelta(days=3))
        assert run(policy, chat).greeting
        assert not run(
            policy, replace(chat, last_incoming_at=MON_NOON - timedelta(days=2))
        ).greeting


@dataclass
class Job:
    reply_at: datetime
    greeting: bool
    replying: bool


@settings(deadline=None, max_examples=80)
@given(
    days=st.sampled_from([7, 14, 21, 28, 1.5]),
    gaps=st.lists(st.integers(1, 40 * 24 * 60), min_size=1, max_size=25),
    hours=st.sampled_from(["always", "office", "vacation"]),
)
def test_a_chat_is_greeted_at_most_once_per_period(
    days: float, gaps: list[int], hours: str
) -> None:
    """Whatever the times of a contact's messages, two greetings that reach the chat are at
    least `greeting_after_days` apart. The state evolves as the pipeline keeps it
    (plan.chat_state): each message and each sent reply mark the chat active, the newest pending
    reply counts as activity at its reply_at and says whether it carries the greeting, a reply
    joins a pending reply (debounce) and anything else gets a job of its own."""
    schedule = {"always": WorkingHours.always_open(), "office": OFFICE, "vacation": VACATIONING}
    policy = replace(POLICY, hours=schedule[hours], greeting_after_days=days)
    now = MON_NOON
    chat = ChatState(chat_is_new=True)
    jobs: list[Job] = []  # not sent yet, oldest first
    sent_at: datetime | None = None
    greeted: list[datetime] = []
    for gap in [*gaps, 0]:
        for job in [job for job in jobs if job.reply_at <= now]:
            jobs.remove(job)
            sent_at = max(sent_at or job.reply_at, job.reply_at)
            if job.greeting:
                greeted.append(job.reply_at)
        newest = jobs[-1] if jobs else None
        times = [t for t in (sent_at, newest and newest.reply_at) if t is not None]
        chat = replace(
            chat,
            last_outgoing_at=max(times, default=None),
            greeting_pending=newest is not None and newest.greeting,
        )
        decision = decide(policy, message(now), chat, now=now, rng=random.Random(gap))
        if decision.action is Action.REPLY and newest is not None and newest.replying:
            assert decision.reply_at is not None
            newest.reply_at = decision.reply_at  # joins the burst, keeps its greeting
        elif decision.action in (Action.REPLY, Action.DEFER):
            assert decision.reply_at is not None
            jobs.append(Job(decision.reply_at, decision.greeting, decision.action is Action.REPLY))
        chat = replace(chat, chat_is_new=False, last_incoming_at=now)
        now += timedelta(minutes=gap)
    greeted += [job.reply_at for job in jobs if job.greeting]
    assert greeted, "the new chat is greeted"
    for earlier, later in itertools.pairwise(sorted(greeted)):
        assert later - earlier >= timedelta(days=days)


class TestAllChatsExcept:
    def test_explains_the_left_out_category(self) -> None:
        rules = RecipientRules(
            existing_chats=False,
            new_chats=False,
            contacts=True,
            non_contacts=False,
            exclude_selected=True,
        )
        decision = run(replace(POLICY, recipients=rules))
        assert decision.skip_reason is SkipReason.CONTACT
        assert decision.explain[-1] == (
            "skip (contact): contacts are left out (exclude_selected = true, contacts = true)"
        )
        stranger = replace(ALICE, id=77, username=None, is_contact=False)
        assert run(replace(POLICY, recipients=rules), sender=stranger, chat_id=77).action is (
            Action.REPLY
        )


# --- working hours over any sequence of messages ---------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York"]
# The 2025 switches: Berlin 30 Mar / 26 Oct, New York 9 Mar / 2 Nov (all at 01:00-07:00 UTC).
SWITCHES = [
    datetime(2025, 3, 30, 1, 0, tzinfo=UTC),
    datetime(2025, 10, 26, 1, 0, tzinfo=UTC),
    datetime(2025, 3, 9, 7, 0, tzinfo=UTC),
    datetime(2025, 11, 2, 6, 0, tzinfo=UTC),
]


def _range(start: int, length: int) -> str:
    end = (start + length) % 1440
    end_text = "24:00" if start + length == 1440 else f"{end // 60:02d}:{end % 60:02d}"
    return f"{start // 60:02d}:{start % 60:02d}-{end_text}"


ranges = st.builds(
    _range, st.integers(0, 95).map(lambda q: q * 15), st.integers(1, 95).map(lambda q: q * 15)
)
schedules = st.dictionaries(
    st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
    st.lists(ranges, max_size=2),
    min_size=1,
)


@settings(deadline=None, max_examples=80)
@given(
    zone=st.sampled_from(ZONES),
    schedule=schedules,
    switch=st.sampled_from(SWITCHES),
    start=st.integers(-2 * 1440, 1440),
    gaps=st.lists(st.integers(0, 6 * 60), min_size=1, max_size=12),
    holiday=st.one_of(st.none(), st.integers(-1440, 1440)),
    mode=st.sampled_from(list(OutsideHoursMode)),
    away=st.sampled_from([AwayMode.OFF, AwayMode.OUTSIDE_HOURS]),
)
def test_no_sequence_of_messages_is_answered_outside_the_hours(
    zone: str,
    schedule: dict[str, list[str]],
    switch: datetime,
    start: int,
    gaps: list[int],
    holiday: int | None,
    mode: OutsideHoursMode,
    away: AwayMode,
) -> None:
    """Around DST switches in two zones, with a holiday: the twin starts answering (reply_at
    minus its human delay) only at an open instant, never before the next opening, and outside
    the hours it sends nothing but the away message, at most once per repeat window."""
    closed = []
    if holiday is not None:
        begin = switch + timedelta(minutes=holiday)
        closed.append((begin, begin + timedelta(days=1)))
    hours = WorkingHours.from_config(zone, schedule, closed=closed)
    policy = AccountPolicy(
        hours=hours,
        humanize=EXACT,
        outside_hours_mode=mode,
        away=AwayRule(mode=away),
        away_repeat_hours=12,
        debounce_s=0,
        debounce_max_s=0,
    )
    now = switch + timedelta(minutes=start, seconds=17)
    chat = ChatState()
    for gap in gaps:
        decision = decide(policy, message(now), chat, now=now, rng=random.Random(gap))
        open_now = is_open(hours, now)
        if decision.action is Action.REPLY:
            assert open_now
        elif decision.action is Action.DEFER:
            assert not open_now and mode is OutsideHoursMode.DEFER and away is AwayMode.OFF
            assert decision.delay is not None and decision.reply_at is not None
            opening = decision.reply_at - decision.delay.as_timedelta
            assert opening > now and is_open(hours, opening)
            assert not is_open(hours, opening - timedelta(seconds=1))
        elif decision.action is Action.AWAY:
            assert not open_now
            assert chat.last_away_at is None or now - chat.last_away_at >= timedelta(hours=12)
            chat = replace(chat, last_away_at=now)
        else:
            assert decision.skip_reason in (
                SkipReason.OUTSIDE_HOURS,
                SkipReason.AWAY_ALREADY_SENT,
            )
            assert not open_now
        chat = replace(chat, last_incoming_at=now)
        now += timedelta(minutes=gap)


@pytest.mark.parametrize(
    ("zone", "local_day", "utc_hours"),
    [
        ("Europe/Berlin", "2025-03-30", 23),  # spring: the holiday is 23 hours long
        ("Europe/Berlin", "2025-10-26", 25),  # autumn: 25 hours
        ("America/New_York", "2025-03-09", 23),
        ("America/New_York", "2025-11-02", 25),
    ],
)
def test_a_holiday_on_a_switch_day_is_the_whole_local_day(
    zone: str, local_day: str, utc_hours: int
) -> None:
    hours = WorkingHours.from_config(zone, {}, closed=[local_day])
    [(begin, end)] = hours.closed
    assert end - begin == timedelta(hours=utc_hours)
    policy = replace(POLICY, hours=hours)
    assert run(policy, now=begin).action is Action.DEFER
    assert run(policy, now=end - timedelta(seconds=1)).action is Action.DEFER
    assert run(policy, now=end).action is Action.REPLY
    assert run(policy, now=begin - timedelta(seconds=1)).action is Action.REPLY


@settings(deadline=None, max_examples=80)
@given(
    zone=st.sampled_from(ZONES),
    schedule=schedules,
    switch=st.sampled_from(SWITCHES),
    start=st.integers(-2 * 1440, 1440),
    grace=st.integers(1, 16 * 60),
)
def test_a_grace_period_never_holds_a_reply_past_closing(
    zone: str, schedule: dict[str, list[str]], switch: datetime, start: int, grace: int
) -> None:
    """A reply held by the grace period is answered within the hours: when the grace ends after
    closing, at the next opening (only the human read delay of 10 s may run past closing)."""
    hours = WorkingHours.from_config(zone, schedule)
    policy = AccountPolicy(
        hours=hours, humanize=EXACT, debounce_s=0, debounce_max_s=0, grace_minutes=grace
    )
    now = switch + timedelta(minutes=start, seconds=17)
    decision = decide(policy, message(now), ChatState(), now=now, rng=random.Random(0))
    if decision.action in (Action.REPLY, Action.DEFER):
        assert decision.reply_at is not None
        assert decision.reply_at >= now + timedelta(minutes=grace) or (
            decision.reply_at == now + timedelta(seconds=10)  # grace ends before the delay
        )
        assert is_open(hours, decision.reply_at) or decision.reply_at - now <= timedelta(
            seconds=10
        )
