"""A reply job's states as the pipeline groups them, and the one way a job ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twin.db.records import ReplyRecord
from twin.db.records_safety import AccountModeRecord
from twin.domain.models import Failure, ReplyState
from twin.ports import Events, Tx
from twin.services.events import StagedEvent

ACTIVE = (ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING, ReplyState.SENDING)
BEFORE_SENDING = (ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING)
REASON_CHARS = 64  # replies.reason and messages.state_reason are VARCHAR(64)

# An account's mode (twin.services.safety.Safety.mode): None = active, never changed.
ModeOf = Callable[[int], AccountModeRecord | None]


def no_modes(account_id: int) -> AccountModeRecord | None:
    return None


def off_reason(record: AccountModeRecord | None) -> str | None:
    """Why the twin is off on the account (the decision's explain line), or None."""
    if record is None or record.mode != "off":
        return None
    who = "the safety governor" if record.set_by == "governor" else "the owner"
    return f"the twin is off on this account, set by {who}: {record.reason}"


def finish_tx(
    tx: Tx,
    events: Events,
    reply_id: int,
    state: ReplyState,
    reason: str,
    event: str,
    failure: Failure | None = None,
    expect: tuple[ReplyState, ...] = ACTIVE,
    **details: Any,
) -> tuple[ReplyRecord, StagedEvent]:
    """Inside `tx`: move an active job (one in `expect`) to a terminal state with its messages
    and its event; Conflict if it is no longer active."""
    fields: dict[str, Any] = {}
    if failure is not None:
        fields["failure"] = details["failure"] = failure.value
    done = tx.update_reply(reply_id, expect_state=expect, state=state, reason=reason, **fields)
    tx.finish_reply_messages(reply_id, state, reason)
    return done, events.stage_reply(tx, event, done, reason=reason, **details)
