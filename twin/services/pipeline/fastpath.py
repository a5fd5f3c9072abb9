"""The one named fast path: the shortcuts that save a round trip, kept out of the main flow.

1. *Hand-over.* A job due the moment it is planned is created leased, in the plan's own
   transaction, and handed straight to the worker (`Handoff.submit`) instead of waiting for a
   claim; when nothing has to happen first (a text to answer, by a twin that is on) it is
   created already `generating`, with the conversation read in that same transaction
   (`started_tx`): one commit per message before generation.
2. *Read-ahead.* A delivery's opening (Telegram: the read receipt) is requested when a job
   starts and awaited only before the reply is committed to `sending`: its round trip overlaps
   generation instead of adding to every reply's latency (`read_ahead`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

from twin.db.records import ReplyRecord
from twin.domain.decide import Action, Decision
from twin.domain.models import IncomingMessage, MessageKind
from twin.ports import Events, Tx
from twin.services.events import StagedEvent
from twin.services.pipeline.records import Prepared, Started
from twin.services.policy import Behaviour

log = logging.getLogger("twin.pipeline")

HISTORY_TURNS = 200


class Handoff(Protocol):
    """The reply worker, as the plan step sees it (twin.jobs.worker.ReplyWorker)."""

    def lease_until(self, now: datetime) -> datetime | None: ...

    def submit(self, job: ReplyRecord, prepared: Prepared | None = None) -> None: ...


class FastPath:
    def __init__(self) -> None:
        self.handoff: Handoff | None = None  # the running worker (lifecycle hands it over)

    def lease(self, now: datetime) -> datetime | None:
        """The lease of a job planned now when the worker can run it at once, else None."""
        return self.handoff.lease_until(now) if self.handoff is not None else None

    @staticmethod
    def starts(decision: Decision, message: IncomingMessage, behaviour: Behaviour) -> bool:
        """Whether a handed-over job is created already `generating`: nothing has to happen
        first (voice notes are transcribed before the conversation is read; an away message
        needs no conversation)."""
        return (
            decision.action is Action.REPLY
            and message.kind is MessageKind.TEXT
            and behaviour.twin.enabled
            and behaviour.twin.mode == "auto"
        )

    @staticmethod
    def hand_over_tx(
        tx: Tx,
        events: Events,
        reply: ReplyRecord,
        prepared: Prepared,
        start: bool,
        style_known: datetime | None,
    ) -> tuple[list[StagedEvent], Prepared]:
        """Inside the plan's transaction, for a job created leased: when it was created
        already `generating` (`start`), its event and what generation reads with that move."""
        if not start:
            return [], prepared
        generating = events.stage_reply(tx, "reply.generating", reply)
        started = started_tx(tx, reply.account_id, reply.chat_id, style_known)
        return [generating], dataclasses.replace(prepared, started=started)

    def submit(self, job: ReplyRecord, prepared: Prepared) -> None:
        assert self.handoff is not None  # a lease was granted by it
        self.handoff.submit(job, prepared)

    @staticmethod
    def read_ahead(opening: Awaitable[None]) -> asyncio.Future[None]:
        """Start a delivery's opening now; its outcome is retrieved even if nobody awaits it."""
        future = asyncio.ensure_future(opening)
        future.add_done_callback(_consume)
        return future


def started_tx(tx: Tx, account_id: int, chat_id: int, style_known: datetime | None) -> Started:
    """What generation reads with the move to `generating`: the conversation (newest first)
    and (style profile version, the profile record if it is not the `style_known` one)."""
    rows = tx.conversation(account_id, chat_id, limit=HISTORY_TURNS)
    version = tx.style_profile_version(account_id)
    record = None
    if version is not None and (style_known is None or style_known != version):
        record = tx.get_style_profile(account_id)
    return Started(rows, (version, record))


def _consume(opening: asyncio.Future[None]) -> None:
    """Retrieve an opening's outcome, so a failure nobody awaited (the job ended first) is
    logged rather than reported by asyncio as never retrieved."""
    if not opening.cancelled() and opening.exception() is not None:
        log.info("read receipt failed: %s", opening.exception())
