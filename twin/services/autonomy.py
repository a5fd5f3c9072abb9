"""Earned autonomy (issue 18 §3, `[twin] autonomy`): after each decision of the owner on a chat's
draft, and after each correction of an auto reply from the owner's phone, the chat's mode is
judged by twin.domain.autonomy; a move is the chat's own `[twin] mode` override (what
PUT /chats/{id}/settings sets) and a `chat.autonomy` event with its reason. Judged in the
background of the event that triggered it: a decision never waits for it."""

from __future__ import annotations

import asyncio
import logging

from twin.domain.autonomy import AutonomyRule, demotion, promotion
from twin.ports import Store
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.pipeline.caches import Behaviours
from twin.services.settings import BehaviourSettings

log = logging.getLogger("twin.autonomy")


class Autonomy:
    def __init__(
        self,
        store: Store,
        directory: AccountDirectory,
        events: EventLog,
        behaviours: Behaviours,
        settings: BehaviourSettings,
    ) -> None:
        self._store = store
        self._directory = directory
        self._events = events
        self._behaviours = behaviours
        self._settings = settings
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one judgement at a time: two decisions, one move
        events.subscribe(self._on_event)

    def _on_event(self, event: StagedEvent) -> None:
        decided = event.type in ("draft.sent", "draft.skipped") and event.data.get("reason") != (
            "on expiry"
        )
        if not (decided or event.type == "correction.recorded"):
            return
        if event.account_id is None or event.chat_id is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._judge(event.account_id, event.chat_id, phone=not decided)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _judge(self, account_id: int, chat_id: int, *, phone: bool) -> None:
        try:
            async with self._lock:
                await self._judge_locked(account_id, chat_id, phone=phone)
        except Exception:  # the decision stands; autonomy is judged again at the next one
            log.exception("autonomy: chat %s was not judged", chat_id)

    async def _judge_locked(self, account_id: int, chat_id: int, *, phone: bool) -> None:
        chat = await self._store.get_chat(chat_id)
        twin = (await self._behaviours.of_chat(self._store, chat)).twin
        if not twin.autonomy:
            return
        rule = AutonomyRule(
            twin.autonomy_min_drafts, twin.autonomy_approval, twin.autonomy_heavy_edit
        )
        recent = await self._store.corrections(
            account_id, chat_id=chat_id, limit=rule.min_drafts
        )
        if not recent:
            return
        if phone and twin.mode == "auto":
            newest = recent[0]
            reason = demotion(newest.kind, newest.twin_text, newest.owner_text, rule)
            mode = "draft"
        elif not phone and twin.mode == "draft":
            reason = promotion([c.kind for c in recent], rule)
            mode = "auto"
        else:
            return
        if reason is None:
            return
        account = await self._directory.name_of(account_id)
        await self._settings.update_chat(account, chat.peer_id, {"twin": {"mode": mode}})
        await self._events.emit(
            "chat.autonomy",
            {"account": account, "chat": chat.peer_id, "mode": mode, "reason": reason},
            account_id=account_id,
            chat_id=chat_id,
        )
