"""A reply job's states as the pipeline groups them, and the one way a job ends."""

from __future__ import annotations

from typing import Any

from twin.db.records import ReplyRecord
from twin.domain.models import Failure, ReplyState
from twin.ports import Events, Tx
from twin.services.events import StagedEvent

ACTIVE = (ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING, ReplyState.SENDING)
BEFORE_SENDING = (ReplyState.RECEIVED, ReplyState.SCHEDULED, ReplyState.GENERATING)
REASON_CHARS = 64  # replies.reason and messages.state_reason are VARCHAR(64)


def finish_tx(
    tx: Tx,
    events: Events,
    reply_id: int,
    state: ReplyState,
    reason: str,
    event: str,
    failure: Failure | None = None,
    **details: Any,
) -> tuple[ReplyRecord, StagedEvent]:
    """Inside `tx`: move an active job to a terminal state with its messages and its event;
    Conflict if it is no longer active."""
    fields: dict[str, Any] = {}
    if failure is not None:
        fields["failure"] = details["failure"] = failure.value
    done = tx.update_reply(reply_id, expect_state=ACTIVE, state=state, reason=reason, **fields)
    tx.finish_reply_messages(reply_id, state, reason)
    return done, events.stage_reply(tx, event, done, reason=reason, **details)
