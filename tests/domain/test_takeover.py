"""The twin steps back: the takeover window (restarted by each owner message, capped from the
first), the grace period, what an owner's read cancels, and decide() during a takeover."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.decide import AccountPolicy, Action, ChatState, decide
from twin.domain.models import ChatKind, IncomingMessage, Sender, SkipReason
from twin.domain.policies.delays import HumanizeConfig
from twin.domain.policies.takeover import (
    TakeoverResume,
    TakeoverWindow,
    grace_until,
    read_cancels,
    resumed_reply_at,
    takeover_window,
)
from twin.domain.policies.working_hours import WorkingHours

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday
ALICE = Sender(id=42, name="Alice", username="alice", is_contact=True, is_bot=False)
EXACT = HumanizeConfig(read_delay_median=10, read_delay_sigma=0, read_delay_min=0)
POLICY = AccountPolicy(
    humanize=EXACT, debounce_s=0, debounce_max_s=0, takeover_minutes=30, takeover_max_minutes=120
)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def message(at: datetime, message_id: int = 7) -> IncomingMessage:
    return IncomingMessage(
        account="main",
        chat_id=42,
        chat_kind=ChatKind.PRIVATE,
        message_id=message_id,
        sender=ALICE,
        date=at,
        text="hi",
    )


def run(policy: AccountPolicy, chat: ChatState, now: datetime):
    return decide(policy, message(now), chat, now=now, rng=random.Random(0))


class TestWindow:
    def test_each_owner_message_restarts_the_pause(self) -> None:
        first = takeover_window(T0, 30, 120)
        assert first == TakeoverWindow(T0, T0 + minutes(30))
        again = takeover_window(T0 + minutes(20), 30, 120, current=first)
        assert again == TakeoverWindow(T0, T0 + minutes(50))  # same takeover, later end

    def test_capped_from_the_first_message(self) -> None:
        window = TakeoverWindow(T0, T0 + minutes(110))
        capped = takeover_window(T0 + minutes(100), 30, 120, current=window)
        assert capped == TakeoverWindow(T0, T0 + minutes(120))
        uncapped = takeover_window(T0 + minutes(100), 30, 0, current=window)
        assert uncapped == TakeoverWindow(T0, T0 + minutes(130))

    def test_a_message_after_the_end_starts_a_new_takeover(self) -> None:
        over = TakeoverWindow(T0, T0 + minutes(120))
        new = takeover_window(T0 + minutes(125), 30, 120, current=over)
        assert new == TakeoverWindow(T0 + minutes(125), T0 + minutes(155))

    def test_a_late_message_never_shortens_the_pause(self) -> None:
        window = TakeoverWindow(T0, T0 + minutes(50))
        late = takeover_window(T0 + minutes(5), 30, 120, current=window)
        assert late == window

    def test_no_takeover_without_minutes(self) -> None:
        assert takeover_window(T0, 0, 120) is None


def test_grace_and_reads() -> None:
    assert grace_until(T0, 5) == T0 + minutes(5)
    assert grace_until(T0, 0) is None
    assert read_cancels(10, 10, has_grace=True)
    assert not read_cancels(9, 10, has_grace=True)  # a newer message is still unread
    assert not read_cancels(10, 10, has_grace=False)  # no grace: a read changes nothing
    assert not read_cancels(10, None, has_grace=True)
    with pytest.raises(ValueError, match="timezone-aware"):
        grace_until(datetime(2026, 1, 1), 5)


class TestDecide:
    def test_grace_holds_the_reply_back_and_says_why(self) -> None:
        policy = AccountPolicy(humanize=EXACT, debounce_s=0, grace_minutes=5)
        decision = run(policy, ChatState(), T0)
        assert decision.action is Action.REPLY
        assert decision.reply_at == T0 + minutes(5)
        assert decision.grace_until == T0 + minutes(5)
        assert any(line.startswith("grace period: ") for line in decision.explain)

    def test_grace_counts_from_the_first_message_of_the_batch(self) -> None:
        policy = AccountPolicy(humanize=EXACT, debounce_s=0, grace_minutes=5)
        now = T0 + minutes(3)
        decision = run(policy, ChatState(pending_since=T0), now)
        assert decision.reply_at == T0 + minutes(5)

    def test_without_grace_nothing_changes(self) -> None:
        decision = run(AccountPolicy(humanize=EXACT, debounce_s=0), ChatState(), T0)
        assert decision.reply_at == T0 + timedelta(seconds=10)
        assert decision.grace_until is None

    def test_during_a_takeover_the_message_waits_for_the_pause_to_end(self) -> None:
        until = T0 + minutes(30)
        chat = ChatState(paused_until=until, takeover_since=T0 - minutes(1))
        decision = run(POLICY, chat, T0)
        assert decision.action is Action.DEFER and decision.takeover_resume
        assert decision.reply_at == until + timedelta(seconds=10)
        assert any("takeover_resume = answer" in line for line in decision.explain)

    def test_takeover_resume_drop_skips(self) -> None:
        policy = AccountPolicy(humanize=EXACT, takeover_resume=TakeoverResume.DROP)
        chat = ChatState(paused_until=T0 + minutes(30), takeover_since=T0)
        decision = run(policy, chat, T0)
        assert (decision.action, decision.skip_reason) == (Action.SKIP, SkipReason.PAUSED)
        assert "takeover_resume = drop" in decision.explain[-1]

    def test_the_owners_own_pause_still_skips(self) -> None:
        decision = run(POLICY, ChatState(paused_until=T0 + minutes(30)), T0)
        assert (decision.action, decision.skip_reason) == (Action.SKIP, SkipReason.PAUSED)

    def test_a_pause_ending_after_hours_waits_for_the_opening(self) -> None:
        office = WorkingHours.from_config("UTC", {"mon": "09:00-12:15", "tue": "09:00-18:00"})
        policy = AccountPolicy(hours=office, humanize=EXACT, takeover_minutes=30)
        chat = ChatState(paused_until=T0 + minutes(30), takeover_since=T0)
        decision = run(policy, chat, T0 + minutes(1))
        opening = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
        assert decision.action is Action.DEFER
        assert decision.reply_at == opening + timedelta(seconds=10)

    def test_unknown_resume_mode_is_refused(self) -> None:
        with pytest.raises(ValueError, match="takeover_resume"):
            AccountPolicy(takeover_resume="later")  # type: ignore[arg-type]


# --- no sequence of owner/contact events makes the twin answer inside a takeover -------------

EVENTS = st.lists(
    st.tuples(st.sampled_from(["owner", "contact"]), st.integers(min_value=1, max_value=90 * 60)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    events=EVENTS,
    takeover=st.sampled_from([5.0, 30.0]),
    cap=st.sampled_from([0.0, 20.0, 60.0]),
    grace=st.sampled_from([0.0, 3.0]),
)
def test_no_answer_inside_a_takeover_and_none_lost(
    events: list[tuple[str, int]], takeover: float, cap: float, grace: float
) -> None:
    """The pipeline's model: a contact's message is decided with the chat as stored; an owner's
    message cancels every reply not sent yet (due after it) and sets the takeover window. A
    reply is sent at its reply_at unless cancelled; the twin's own admission check is left out,
    so the decisions alone must keep every sent reply out of every pause."""
    policy = AccountPolicy(
        humanize=EXACT,
        debounce_s=0,
        debounce_max_s=0,
        takeover_minutes=takeover,
        takeover_max_minutes=cap,
        grace_minutes=grace,
    )
    now = T0
    window: TakeoverWindow | None = None
    pauses: list[tuple[datetime, datetime]] = []
    pending: list[tuple[datetime, datetime]] = []  # (message date, reply_at)
    last_owner: datetime | None = None
    for kind, gap in events:
        now += timedelta(seconds=gap)
        if kind == "owner":
            pending = [(at, due) for at, due in pending if due < now]  # the rest: cancelled
            window = takeover_window(now, takeover, cap, current=window)
            assert window is not None
            pauses.append((now, window.until))
            last_owner = now
            continue
        paused = window is not None and window.until > now
        chat = ChatState(
            paused_until=window.until if paused and window else None,
            takeover_since=window.started if paused and window else None,
        )
        decision = decide(policy, message(now), chat, now=now, rng=random.Random(0))
        assert decision.action in (Action.REPLY, Action.DEFER), decision.explain
        assert decision.reply_at is not None and decision.reply_at >= now
        pending.append((now, decision.reply_at))
    for _, due in pending:
        for start, end in pauses:
            assert not (start <= due < end), f"answered at {due} inside a pause {start}–{end}"
    # Nothing lost: every contact message newer than the owner's last one is answered.
    answered = {at for at, _ in pending}
    t = T0
    for kind, gap in events:
        t += timedelta(seconds=gap)
        if kind == "contact" and (last_owner is None or t > last_owner):
            assert t in answered, f"the message of {t} was never answered"


def test_a_reply_deferred_to_the_takeover_comes_sooner_when_the_chat_is_resumed() -> None:
    planned = T0 + timedelta(minutes=30, seconds=10)  # the pause's end + a 10 s read delay
    open_all_day = WorkingHours.always_open()
    assert resumed_reply_at(planned, 10, T0, open_all_day) == T0 + timedelta(seconds=10)
    assert resumed_reply_at(planned, None, T0, open_all_day) == T0
    # Closed now: from the next opening, if that is still sooner than planned.
    office = WorkingHours.from_config("UTC", {"mon": "13:00-18:00"})
    late = T0 + timedelta(hours=3)
    assert resumed_reply_at(late, 10, T0, office) == T0 + timedelta(hours=1, seconds=10)
    assert resumed_reply_at(planned, 10, T0, office) is None  # not sooner: left as planned
    assert resumed_reply_at(T0 + timedelta(seconds=5), 10, T0, open_all_day) is None
