from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.decide import (
    AccountPolicy,
    Action,
    ChatState,
    Decision,
    OutsideHoursMode,
    decide,
    owner_took_over,
    takeover_until,
)
from twin.domain.models import ChatKind, IncomingMessage, MessageKind, Sender, SkipReason
from twin.domain.policies.delays import HumanizeConfig
from twin.domain.policies.rate_limits import RateLimits
from twin.domain.policies.recipients import RecipientRules
from twin.domain.policies.working_hours import WorkingHours

MON_NOON = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday
MON_NIGHT = datetime(2025, 1, 6, 21, 0, tzinfo=UTC)
ALICE = Sender(id=42, name="Alice", username="alice", is_contact=True, is_bot=False)
OFFICE = WorkingHours.from_config(
    "UTC", {day: "09:00-18:00" for day in ("mon", "tue", "wed", "thu", "fri")}
)
# Exact timing: the read delay is its median (10 s), no debounce.
EXACT = HumanizeConfig(read_delay_median=10, read_delay_sigma=0, read_delay_min=0)
POLICY = AccountPolicy(hours=OFFICE, humanize=EXACT, debounce_s=0, debounce_max_s=0)


def message(now: datetime = MON_NOON, **kw: object) -> IncomingMessage:
    fields: dict[str, object] = {
        "account": "main",
        "chat_id": 42,
        "chat_kind": ChatKind.PRIVATE,
        "message_id": 7,
        "sender": ALICE,
        "date": now,
        "text": "are you free tonight?",
    }
    fields.update(kw)
    return IncomingMessage(**fields)  # type: ignore[arg-type]


def run(
    policy: AccountPolicy = POLICY,
    chat: ChatState = ChatState(),
    now: datetime = MON_NOON,
    seed: int = 0,
    **msg: object,
) -> Decision:
    return decide(policy, message(now, **msg), chat, now=now, rng=random.Random(seed))


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class TestReply:
    def test_reply_after_the_read_delay(self) -> None:
        decision = run()
        assert decision.action is Action.REPLY
        assert decision.reply_at == MON_NOON + seconds(10)
        assert decision.skip_reason is None
        assert decision.delay is not None and decision.delay.seconds == 10
        assert decision.delay.reason in decision.explain
        assert decision.explain[-1] == f"reply at {(MON_NOON + seconds(10)).isoformat()}"

    def test_active_chat_reads_faster(self) -> None:
        chat = ChatState(last_incoming_at=MON_NOON - timedelta(minutes=1))
        assert run(chat=chat).reply_at == MON_NOON + seconds(3)

    def test_debounce_waits_for_the_burst(self) -> None:
        policy = replace(POLICY, debounce_s=20, debounce_max_s=120)
        decision = run(policy)
        assert decision.reply_at == MON_NOON + seconds(20)
        assert any(line.startswith("debounce: wait") for line in decision.explain)

    def test_debounce_is_bounded_since_the_first_message(self) -> None:
        policy = replace(POLICY, debounce_s=20, debounce_max_s=120)
        chat = ChatState(pending_since=MON_NOON - seconds(110))
        # 10 s left of the 120 s budget, but the read delay is 10 s anyway (3 s: active chat)
        chat = replace(chat, last_incoming_at=MON_NOON - seconds(5))
        assert run(policy, chat).reply_at == MON_NOON + seconds(10)
        chat = replace(chat, pending_since=MON_NOON - seconds(500))
        assert run(policy, chat).reply_at == MON_NOON + seconds(3)

    def test_the_longer_of_debounce_and_read_delay_wins(self) -> None:
        policy = replace(POLICY, debounce_s=5, debounce_max_s=120)
        assert run(policy).reply_at == MON_NOON + seconds(10)

    def test_greeting_for_new_chats_and_long_silence(self) -> None:
        assert run(chat=ChatState(chat_is_new=True)).greeting
        policy = replace(POLICY, greeting_after_days=7)
        old = ChatState(last_incoming_at=MON_NOON - timedelta(days=8))
        recent = ChatState(last_incoming_at=MON_NOON - timedelta(days=1))
        assert run(policy, old).greeting
        assert not run(policy, recent).greeting
        line = "greeting: no message in this chat for 8.0 days (greeting_after_days = 7)"
        assert line in run(policy, old).explain
        assert "greeting: new chat" in run(chat=ChatState(chat_is_new=True)).explain

    def test_default_policy_answers(self) -> None:
        decision = decide(
            AccountPolicy(), message(), ChatState(), now=MON_NOON, rng=random.Random(1)
        )
        assert decision.action is Action.REPLY
        assert decision.reply_at is not None
        assert MON_NOON + seconds(20) <= decision.reply_at <= MON_NOON + seconds(90)


class TestSkips:
    def test_disabled_account(self) -> None:
        decision = run(replace(POLICY, enabled=False), sender=replace(ALICE, is_bot=True))
        assert decision.action is Action.SKIP
        assert decision.skip_reason is SkipReason.DISABLED
        assert decision.reply_at is None
        assert not decision.greeting
        assert decision.explain == ("skip (disabled): the twin is disabled for this account",)

    @pytest.mark.parametrize(
        ("msg", "reason"),
        [
            ({"sender": replace(ALICE, is_bot=True)}, SkipReason.BOT),
            ({"chat_kind": ChatKind.CHANNEL}, SkipReason.CHANNEL),
            ({"chat_kind": ChatKind.SAVED}, SkipReason.SAVED_MESSAGES),
            ({"is_service": True}, SkipReason.SERVICE),
            ({"chat_kind": ChatKind.GROUP, "chat_id": -5}, SkipReason.GROUP_NOT_ADDRESSED),
        ],
    )
    def test_recipient_rules(self, msg: dict[str, object], reason: SkipReason) -> None:
        decision = run(**msg)
        assert decision.skip_reason is reason
        assert decision.explain[-1].startswith(f"skip ({reason}): ")

    def test_exclude_list(self) -> None:
        policy = replace(POLICY, recipients=RecipientRules(exclude=frozenset({"@alice"})))
        assert run(policy).skip_reason is SkipReason.EXCLUDED

    def test_mentioned_in_a_group_is_answered(self) -> None:
        decision = run(chat_kind=ChatKind.SUPERGROUP, chat_id=-5, mentions_owner=True)
        assert decision.action is Action.REPLY

    def test_owner_pause(self) -> None:
        paused = ChatState(paused_until=MON_NOON + timedelta(minutes=1))
        decision = run(chat=paused)
        assert decision.skip_reason is SkipReason.PAUSED
        assert "owner took over" in decision.explain[-1]
        assert run(chat=ChatState(paused_until=MON_NOON)).action is Action.REPLY

    def test_too_long_voice(self) -> None:
        policy = replace(POLICY, max_voice_s=60)
        voice = {"kind": MessageKind.VOICE, "duration": 61.0}
        assert run(policy, **voice).skip_reason is SkipReason.TOO_LONG_VOICE
        assert run(policy, kind=MessageKind.VOICE, duration=60.0).action is Action.REPLY
        assert run(POLICY, **voice).action is Action.REPLY  # 0 = no limit

    def test_rate_limits(self) -> None:
        policy = replace(POLICY, rate_limits=RateLimits(2, 3))
        recent = (MON_NOON - timedelta(minutes=5),) * 2
        decision = run(policy, ChatState(chat_reply_times=recent))
        assert decision.skip_reason is SkipReason.RATE_LIMITED_CHAT
        assert "2 replies in this chat in the last hour (limit 2)" in decision.explain[-1]
        decision = run(policy, ChatState(account_reply_times=recent * 2))
        assert decision.skip_reason is SkipReason.RATE_LIMITED_ACCOUNT

    def test_order_of_checks(self) -> None:
        everything = ChatState(
            paused_until=MON_NIGHT + timedelta(hours=1),
            chat_reply_times=(MON_NIGHT,) * 100,
        )
        policy = replace(POLICY, outside_hours_mode=OutsideHoursMode.IGNORE)
        bot = replace(ALICE, is_bot=True)
        at_night = {"now": MON_NIGHT}
        assert run(policy, everything, sender=bot, **at_night).skip_reason is SkipReason.BOT
        assert run(policy, everything, **at_night).skip_reason is SkipReason.PAUSED
        no_pause = replace(everything, paused_until=None)
        assert run(policy, no_pause, **at_night).skip_reason is SkipReason.RATE_LIMITED_CHAT
        quiet = replace(no_pause, chat_reply_times=())
        assert run(policy, quiet, **at_night).skip_reason is SkipReason.OUTSIDE_HOURS


class TestOutsideHours:
    def test_ignore(self) -> None:
        policy = replace(POLICY, outside_hours_mode="ignore")
        decision = run(policy, now=MON_NIGHT)
        assert decision.skip_reason is SkipReason.OUTSIDE_HOURS
        assert "outside working hours (Mon 21:00 UTC)" in decision.explain[-1]

    def test_away_once_per_repeat_window(self) -> None:
        policy = replace(POLICY, outside_hours_mode="away", away_repeat_hours=12)
        first = run(policy, now=MON_NIGHT)
        assert first.action is Action.AWAY
        assert first.reply_at == MON_NIGHT
        assert not first.greeting
        sent = ChatState(last_away_at=MON_NIGHT - timedelta(hours=2))
        again = run(policy, sent, now=MON_NIGHT)
        assert again.skip_reason is SkipReason.AWAY_ALREADY_SENT
        assert "repeat every 12 h" in again.explain[-1]
        long_ago = ChatState(last_away_at=MON_NIGHT - timedelta(hours=12))
        assert run(policy, long_ago, now=MON_NIGHT).action is Action.AWAY

    def test_defer_to_the_next_opening_plus_read_delay(self) -> None:
        decision = run(now=MON_NIGHT)
        assert decision.action is Action.DEFER
        tuesday_nine = datetime(2025, 1, 7, 9, 0, tzinfo=UTC)
        assert decision.reply_at == tuesday_nine + seconds(10)
        expected = "deferred to the next opening 2025-01-07T09:00:00+00:00"
        assert any(expected in line for line in decision.explain)

    def test_defer_over_the_weekend_and_a_vacation(self) -> None:
        hours = WorkingHours.from_config(
            "Europe/Berlin",
            {day: "09:00-18:00" for day in ("mon", "tue", "wed", "thu", "fri")},
            closed=[("2025-01-13", "2025-01-14")],
        )
        policy = replace(POLICY, hours=hours)
        friday_evening = datetime(2025, 1, 10, 19, 0, tzinfo=UTC)
        decision = run(policy, now=friday_evening)
        # Wed 15 Jan 09:00 Berlin = 08:00 UTC
        assert decision.reply_at == datetime(2025, 1, 15, 8, 0, tzinfo=UTC) + seconds(10)

    def test_defer_ignores_the_active_chat_speed_up(self) -> None:
        chat = ChatState(last_incoming_at=MON_NIGHT - timedelta(minutes=1))
        decision = run(chat=chat, now=MON_NIGHT)
        assert decision.delay is not None and decision.delay.seconds == 10

    def test_defer_keeps_the_greeting(self) -> None:
        assert run(chat=ChatState(chat_is_new=True), now=MON_NIGHT).greeting

    def test_never_open_schedule_skips(self) -> None:
        policy = replace(POLICY, hours=WorkingHours.from_config("UTC", {"mon": "closed"}))
        decision = run(policy)
        assert decision.skip_reason is SkipReason.OUTSIDE_HOURS
        assert "never opens again" in decision.explain[-1]


class TestPolicy:
    def test_mode_from_config_string(self) -> None:
        assert AccountPolicy(outside_hours_mode="away").outside_hours_mode is OutsideHoursMode.AWAY  # type: ignore[arg-type]

    def test_bad_mode(self) -> None:
        with pytest.raises(ValueError, match=r"schedule\.outside_hours: 'sleep' is not one of"):
            AccountPolicy(outside_hours_mode="sleep")  # type: ignore[arg-type]

    def test_negative_number(self) -> None:
        with pytest.raises(ValueError, match="debounce_s"):
            AccountPolicy(debounce_s=-1)


def test_takeover_until() -> None:
    assert takeover_until(MON_NOON, 30) == MON_NOON + timedelta(minutes=30)
    assert takeover_until(MON_NOON, 0) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        takeover_until(datetime(2025, 1, 6), 30)


def test_owner_took_over_when_they_wrote_after_the_newest_message() -> None:
    second = timedelta(seconds=1)
    assert owner_took_over(MON_NOON + second, MON_NOON)
    assert not owner_took_over(MON_NOON - second, MON_NOON)
    # Dates a second apart decide alone, whatever the ids say.
    assert owner_took_over(MON_NOON + second, MON_NOON, owner_message_id=1, newest_message_id=2)
    # Within one second the ids decide; without them the owner is taken to have answered.
    assert owner_took_over(MON_NOON, MON_NOON, owner_message_id=8, newest_message_id=7)
    assert not owner_took_over(MON_NOON, MON_NOON, owner_message_id=7, newest_message_id=8)
    assert owner_took_over(MON_NOON, MON_NOON)
    assert not owner_took_over(None, MON_NOON)
    assert not owner_took_over(MON_NOON, None)
    with pytest.raises(ValueError):
        owner_took_over(datetime(2025, 1, 6), MON_NOON)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(POLICY, message(), ChatState(), now=datetime(2025, 1, 6), rng=random.Random())


optional_minutes_ago = st.one_of(st.none(), st.integers(-120, 3 * 24 * 60))
chat_states = st.builds(
    lambda new, paused, away, last, chat_n, account_n, pending: ChatState(
        chat_is_new=new,
        paused_until=None if paused is None else MON_NOON - timedelta(minutes=paused),
        last_away_at=None if away is None else MON_NOON - timedelta(minutes=away),
        last_incoming_at=None if last is None else MON_NOON - timedelta(minutes=last),
        chat_reply_times=(MON_NOON - timedelta(minutes=10),) * chat_n,
        account_reply_times=(MON_NOON - timedelta(minutes=10),) * account_n,
        pending_since=None if pending is None else MON_NOON - timedelta(seconds=pending),
    ),
    st.booleans(),
    optional_minutes_ago,
    optional_minutes_ago,
    optional_minutes_ago,
    st.integers(0, 25),
    st.integers(0, 25),
    st.one_of(st.none(), st.integers(0, 600)),
)
policies = st.builds(
    AccountPolicy,
    enabled=st.booleans(),
    hours=st.sampled_from([OFFICE, WorkingHours.always_open("Europe/Berlin")]),
    outside_hours_mode=st.sampled_from(list(OutsideHoursMode)),
    debounce_s=st.floats(0, 60),
    debounce_max_s=st.floats(0, 300),
    rate_limits=st.builds(RateLimits, st.integers(0, 20), st.integers(0, 20)),
)


@settings(deadline=None, max_examples=150)
@given(
    policy=policies,
    chat=chat_states,
    hour_offset=st.integers(0, 7 * 24 * 60),
    seed=st.integers(0, 2**32),
    kind=st.sampled_from([ChatKind.PRIVATE, ChatKind.GROUP]),
)
def test_decide_properties(
    policy: AccountPolicy, chat: ChatState, hour_offset: int, seed: int, kind: ChatKind
) -> None:
    now = MON_NOON + timedelta(minutes=hour_offset)
    msg = message(now, chat_kind=kind, mentions_owner=True)
    first = decide(policy, msg, chat, now=now, rng=random.Random(seed))
    # deterministic for a seeded rng
    assert decide(policy, msg, chat, now=now, rng=random.Random(seed)) == first
    assert first.explain, "every decision explains itself"
    if first.action is Action.SKIP:
        assert first.skip_reason is not None and first.reply_at is None and not first.greeting
        return
    assert first.skip_reason is None
    assert first.reply_at is not None and first.reply_at >= now
    assert policy.enabled
    assert chat.paused_until is None or chat.paused_until <= now
    cfg = policy.humanize
    if first.action is Action.REPLY:
        longest = max(cfg.read_delay_max, policy.debounce_max_s, policy.debounce_s)
        assert first.reply_at <= now + seconds(longest)
    if first.action is Action.DEFER:
        assert policy.outside_hours_mode is OutsideHoursMode.DEFER
        opening = first.reply_at - seconds(first.delay.seconds)  # type: ignore[union-attr]
        assert opening > now
        assert OFFICE is policy.hours
        assert opening.hour == 9
