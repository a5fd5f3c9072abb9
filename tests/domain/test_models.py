from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.models import (
    TERMINAL_STATES,
    ChatKind,
    IncomingMessage,
    MessageKind,
    OwnerActivity,
    ReplyState,
    Sender,
    SkipReason,
    can_transition,
    is_terminal,
)

ALICE = Sender(id=42, name="Alice", username="alice", is_contact=True, is_bot=False)


def make(**overrides: object) -> IncomingMessage:
    fields: dict[str, object] = {
        "account": "main",
        "chat_id": 42,
        "chat_kind": ChatKind.PRIVATE,
        "message_id": 1,
        "sender": ALICE,
        "date": datetime(2025, 1, 6, 12, 0, tzinfo=UTC),
        "text": "hi",
    }
    fields.update(overrides)
    return IncomingMessage(**fields)  # type: ignore[arg-type]


class TestIncomingMessage:
    def test_defaults(self) -> None:
        message = make()
        assert message.kind is MessageKind.TEXT
        assert message.duration is None
        assert not (message.mentions_owner or message.replies_to_owner or message.is_service)

    def test_naive_date_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            make(date=datetime(2025, 1, 6, 12, 0))

    def test_date_is_normalised_to_utc(self) -> None:
        moscow = timezone(timedelta(hours=3))
        message = make(date=datetime(2025, 1, 6, 15, 0, tzinfo=moscow))
        assert message.date.tzinfo is UTC
        assert message.date == datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
        assert message == make()

    def test_negative_duration_is_refused(self) -> None:
        with pytest.raises(ValueError, match="duration"):
            make(kind=MessageKind.VOICE, duration=-1.0)

    def test_frozen(self) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            make().text = "changed"  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("kind", "is_group"),
        [
            (ChatKind.PRIVATE, False),
            (ChatKind.GROUP, True),
            (ChatKind.SUPERGROUP, True),
            (ChatKind.CHANNEL, False),
            (ChatKind.SAVED, False),
        ],
    )
    def test_is_group(self, kind: ChatKind, is_group: bool) -> None:
        assert make(chat_kind=kind).is_group is is_group

    @pytest.mark.parametrize(
        ("kind", "is_audio"),
        [
            (MessageKind.TEXT, False),
            (MessageKind.VOICE, True),
            (MessageKind.AUDIO, True),
            (MessageKind.VIDEO_NOTE, True),
            (MessageKind.OTHER, False),
        ],
    )
    def test_is_audio(self, kind: MessageKind, is_audio: bool) -> None:
        assert make(kind=kind).is_audio is is_audio

    def test_hashable_for_dedup(self) -> None:
        assert len({make(), make(), make(message_id=2)}) == 2


def test_owner_activity_requires_aware_date() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OwnerActivity("main", 1, 2, datetime(2025, 1, 1))
    moscow = timezone(timedelta(hours=3))
    activity = OwnerActivity("main", 1, 2, datetime(2025, 1, 1, 3, tzinfo=moscow))
    assert activity.date == datetime(2025, 1, 1, tzinfo=UTC)


def test_enums_round_trip_through_their_stored_values() -> None:
    for enum in (ChatKind, MessageKind, ReplyState, SkipReason):
        for member in enum:
            assert enum(member.value) is member
            assert str(member) == member.value
    assert len({m.value for m in SkipReason}) == len(SkipReason)


class TestReplyStateMachine:
    HAPPY_PATH = (
        ReplyState.RECEIVED,
        ReplyState.SCHEDULED,
        ReplyState.GENERATING,
        ReplyState.SENDING,
        ReplyState.SENT,
    )

    def test_happy_path(self) -> None:
        for src, dst in zip(self.HAPPY_PATH, self.HAPPY_PATH[1:], strict=False):
            assert can_transition(src, dst), (src, dst)

    def test_no_skipping_steps_or_going_back(self) -> None:
        assert not can_transition(ReplyState.RECEIVED, ReplyState.SENT)
        assert not can_transition(ReplyState.SCHEDULED, ReplyState.SENDING)
        assert not can_transition(ReplyState.SENDING, ReplyState.GENERATING)
        # once a bubble may be out, regenerating would send a different text
        assert not can_transition(ReplyState.SENDING, ReplyState.SCHEDULED)

    def test_generation_may_be_retried_later(self) -> None:
        assert can_transition(ReplyState.GENERATING, ReplyState.SCHEDULED)

    @pytest.mark.parametrize(
        "src",
        [ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING, ReplyState.SENDING],
    )
    def test_owner_takeover_can_cancel_any_unfinished_reply(self, src: ReplyState) -> None:
        assert can_transition(src, ReplyState.CANCELLED)
        assert can_transition(src, ReplyState.FAILED)

    @given(
        st.sampled_from(sorted(TERMINAL_STATES - {ReplyState.FAILED})),
        st.sampled_from(list(ReplyState)),
    )
    def test_terminal_states_never_move(self, src: ReplyState, dst: ReplyState) -> None:
        assert is_terminal(src)
        assert not can_transition(src, dst)

    def test_a_failed_reply_may_only_be_requeued_or_dropped(self) -> None:
        assert is_terminal(ReplyState.FAILED)
        allowed = {s for s in ReplyState if can_transition(ReplyState.FAILED, s)}
        # to SENDING when its bubbles were stored (resumed, never regenerated); skipped when
        # another reply answers it, cancelled when the owner answered meanwhile
        assert allowed == {
            ReplyState.SCHEDULED,
            ReplyState.SENDING,
            ReplyState.SKIPPED,
            ReplyState.CANCELLED,
        }

    @given(st.sampled_from(list(ReplyState)))
    def test_no_self_transitions(self, state: ReplyState) -> None:
        assert not can_transition(state, state)

    def test_terminal_set(self) -> None:
        expected = {ReplyState.SENT, ReplyState.SKIPPED, ReplyState.FAILED, ReplyState.CANCELLED}
        assert expected == TERMINAL_STATES

    def test_every_state_can_reach_a_terminal_state(self) -> None:
        for start in ReplyState:
            seen, frontier = {start}, [start]
            while frontier:
                src = frontier.pop()
                for dst in ReplyState:
                    if dst not in seen and can_transition(src, dst):
                        seen.add(dst)
                        frontier.append(dst)
            assert seen & TERMINAL_STATES, start
