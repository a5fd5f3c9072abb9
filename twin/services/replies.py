"""The reply pipeline: one object composing the steps of twin.services.pipeline, the entry
points the rest of the daemon calls (intake's hooks, the worker's jobs, the settings events).

received → scheduled → generating → sending → sent | skipped(reason) | failed(reason) | cancelled

    plan       pipeline/plan.py       store once + decide (pure) + persist the job: one commit
    execute    pipeline/execute.py    a claimed job: generating → generate → sending → deliver
    generate   pipeline/generate.py   conversation + style → brain → structured flags → Draft
    deliver    pipeline/deliver.py    a channel's delivery (Telegram: telegram_delivery.py)
    outcome    pipeline/outcome.py    skip, cancel, fail, retry later, escalate
    takeover   pipeline/takeover.py   owner activity (the one pause: services/chats.py), edits,
                                      deletions

Every step is persisted before its side effect, so a crash at any point resumes correctly:
* scheduled/generating: nothing was sent; generation simply runs again.
* sending: the text and every bubble's random_id were stored before the first send. Bubbles
  already recorded as sent are skipped; the others are sent with their stored random_id, and
  Telegram answers RANDOM_ID_DUPLICATE for any that went out before the crash. So each incoming
  message gets exactly one complete reply: never zero, never two.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import TYPE_CHECKING

from twin.config import Settings
from twin.db.records import ChatRecord, ReplyRecord
from twin.domain.models import IncomingMessage, OwnerActivity, OwnerPresence, OwnerRead
from twin.ports import Accounts, Clock, SpeechToText, Store, TextToSpeech, Thinker, Tx
from twin.services.chats import ChatHold
from twin.services.corrections import Corrections
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.pipeline.caches import Behaviours, Styles
from twin.services.pipeline.execute import Executor
from twin.services.pipeline.fastpath import FastPath, Handoff
from twin.services.pipeline.generate import Generator
from twin.services.pipeline.outcome import Outcomes, failure_reason
from twin.services.pipeline.plan import Planner
from twin.services.pipeline.records import Prepared
from twin.services.pipeline.runs import Runs
from twin.services.pipeline.states import REASON_CHARS
from twin.services.pipeline.takeover import Takeover
from twin.services.pipeline.telegram_delivery import TelegramDelivery, UnstoredFloor
from twin.services.policy import Behaviour

if TYPE_CHECKING:
    from twin.services.knowledge import KnowledgeBase

__all__ = ["REASON_CHARS", "ReplyPipeline", "failure_reason"]


class ReplyPipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Store,
        events: EventLog,
        accounts: Accounts,
        brain: Thinker | None,
        stt: SpeechToText | None = None,
        tts: TextToSpeech | None = None,
        clock: Clock,
        directory: AccountDirectory,
        rng: random.Random | None = None,
        wake: asyncio.Event | None = None,
        knowledge: KnowledgeBase | None = None,
    ) -> None:
        rng = rng or random.Random()
        self._repo = repo
        # the worker sleeps on it: set when a job may be due sooner
        self.wake = wake if wake is not None else asyncio.Event()
        self.runs = Runs()
        self.fast = FastPath()
        self.behaviours = Behaviours(settings)
        self.styles = Styles(repo)
        self.holds = ChatHold(repo, events, self.runs)  # the one pause (services/chats.py)
        self.planner = Planner(
            repo=repo,
            events=events,
            clock=clock,
            directory=directory,
            behaviours=self.behaviours,
            styles=self.styles,
            fast=self.fast,
            runs=self.runs,
            wake=self.wake,
            answers=brain is not None,
            rng=rng,
        )
        self.delivery = TelegramDelivery(
            repo=repo,
            events=events,
            accounts=accounts,
            directory=directory,
            tts=tts,
            clock=clock,
            rng=rng,
            unstored_floor=lambda account, peer: None,
        )
        outcomes = Outcomes(
            settings=settings,
            repo=repo,
            events=events,
            accounts=accounts,
            directory=directory,
            clock=clock,
            rng=rng,
            wake=self.wake,
        )
        generator = self.generator = Generator(
            settings=settings,
            repo=repo,
            accounts=accounts,
            directory=directory,
            brain=brain,
            stt=stt,
            tts=tts,
            styles=self.styles,
            clock=clock,
            knowledge=knowledge,
            corrections=Corrections(repo, events),
        )
        self.executor = Executor(
            repo=repo,
            events=events,
            clock=clock,
            behaviours=self.behaviours,
            styles=self.styles,
            generator=generator,
            delivery=self.delivery,
            outcomes=outcomes,
            fast=self.fast,
            runs=self.runs,
        )
        self.takeover = Takeover(
            repo=repo,
            events=events,
            clock=clock,
            directory=directory,
            behaviours=self.behaviours,
            holds=self.holds,
            runs=self.runs,
        )
        events.subscribe(self._on_event)

    # --- wiring (lifecycle) --------------------------------------------------------------------
    def hand_off_to(self, worker: Handoff | None) -> None:
        """Jobs due at once go straight to this worker (the fast path)."""
        self.fast.handoff = worker

    @property
    def unstored_floor(self) -> UnstoredFloor:
        """(account name, chat peer id) -> the smallest id of its messages intake could not
        store yet: the read receipt stays below it (see Intake.unstored_floor)."""
        return self.delivery.unstored_floor

    @unstored_floor.setter
    def unstored_floor(self, floor: UnstoredFloor) -> None:
        self.delivery.unstored_floor = floor

    # --- caches --------------------------------------------------------------------------------
    def invalidate(self, account_id: int | None = None) -> None:
        """Forget cached settings and style of an account (None: of every account).

        Not needed for correctness: every step reads the stored overrides and the style
        profile's version in a transaction it makes anyway, and rebuilds what changed. This
        only frees the memory at once (PUT /settings calls it through the event log)."""
        self.behaviours.forget(account_id)
        self.styles.forget(account_id)

    def _on_event(self, event: StagedEvent) -> None:
        if event.type == "settings.changed":
            self.invalidate(event.account_id)

    async def behaviour(self, account_id: int, chat: ChatRecord) -> Behaviour:
        return await self.behaviours.of_chat(self._repo, chat)

    # --- intake hooks --------------------------------------------------------------------------
    async def on_new_message(self, message: IncomingMessage, account_id: int) -> bool:
        return await self.planner.on_new_message(message, account_id)

    async def plan_stored(self, since: datetime) -> int:
        return await self.planner.plan_stored(since)

    async def on_owner_activity(self, activity: OwnerActivity, chat: ChatRecord) -> None:
        await self.takeover.on_owner_activity(activity, chat)

    async def on_owner_read(self, read: OwnerRead) -> None:
        await self.takeover.on_owner_read(read)

    async def on_owner_presence(self, presence: OwnerPresence) -> None:
        await self.takeover.on_owner_presence(presence)

    async def on_edited(self, account: str, peer_id: int, tg_message_id: int, text: str) -> None:
        await self.takeover.on_edited(account, peer_id, tg_message_id, text)

    async def on_deleted(self, account: str, peer_id: int | None, tg_ids: list[int]) -> None:
        await self.takeover.on_deleted(account, peer_id, tg_ids)

    # --- the worker's jobs (twin.jobs.worker.Jobs) -----------------------------------------------
    def job_context(self, tx: Tx, reply: ReplyRecord) -> Prepared | None:
        return self.executor.job_context(tx, reply)

    async def execute(self, reply: ReplyRecord, prepared: Prepared | None = None) -> None:
        await self.executor.execute(reply, prepared)
