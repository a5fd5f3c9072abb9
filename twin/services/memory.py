"""Memory of each contact: when a conversation goes quiet (`[knowledge] memory_quiet_minutes`),
the brain extracts what the contact said about themselves and the twin's open promises
(twin.domain.memory); the facts are stored for the *person* (recognised by Telegram user id or
phone on any channel of the same twin) with the message each came from, and given to later
prompts as the contact's memory.

One task looks for quiet conversations every `memory_check_seconds`. Storing the facts and
moving the chat's cursor is one transaction with its event, and a compare-and-set on the cursor:
a second process (or a restart) never stores a conversation's facts twice. A model failure
leaves the cursor where it was and the chat rests for a while before it is tried again; a
conversation with nobody to remember (a group) only moves its cursor."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from twin.background import Periodic, always
from twin.background import Turn as PassTurn
from twin.brain.errors import LLMError
from twin.db.records_knowledge import FactRecord, QuietChat
from twin.domain.conversation import Turn

if TYPE_CHECKING:
    from twin.config import Settings
    from twin.db.repo import Repository, Transaction
    from twin.ports import Clock
    from twin.services.events import EventLog

__all__ = ["ContactMemory", "memory_lines"]

log = logging.getLogger("twin.memory")

MAX_TURNS = 200  # the newest messages of a conversation one extraction reads at most
BATCH = 10  # quiet conversations per pass
RETRY_AFTER = timedelta(minutes=15)  # a conversation whose extraction failed rests this long


def memory_lines(facts: list[FactRecord]) -> tuple[str, ...]:
    """Facts as the prompt shows them: the twin's own open promises marked as such."""
    return tuple(
        f"(you promised) {fact.text}" if fact.kind == "followup" else fact.text for fact in facts
    )


class ContactMemory:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Repository,
        events: EventLog,
        brain: Any,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._knowledge = settings.knowledge
        self._repo = repo
        self._events = events
        self._brain = brain if hasattr(brain, "remember") else None
        self._clock = clock
        self._resting: dict[int, datetime] = {}  # chat id → not before
        seconds = self._knowledge.memory_check_seconds
        self._periodic = Periodic("contact-memory", self._pass, seconds, log)
        # Several processes on one database: one of them makes the passes (lifecycle_cluster).
        self.turn: PassTurn = always

    @property
    def enabled(self) -> bool:
        return self._knowledge.memory and self._brain is not None

    # -- the task ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.enabled:
            self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _pass(self) -> None:
        if await self.turn():
            await self.run_once()

    async def run_once(self) -> int:
        """One pass over the quiet conversations; how many were handled."""
        if not self.enabled:
            return 0
        now = self._clock.now()
        quiet_since = now - timedelta(minutes=self._knowledge.memory_quiet_minutes)
        self._resting = {k: v for k, v in self._resting.items() if v > now}
        handled = 0
        for quiet in await self._repo.quiet_chats(quiet_since, BATCH + len(self._resting)):
            if quiet.chat.id in self._resting:
                continue
            if await self._remember(quiet):
                handled += 1
            if handled >= BATCH:
                break
        return handled

    async def _remember(self, quiet: QuietChat) -> bool:
        rows = await self._repo.memory_turns(quiet.chat.id, quiet.cursor, MAX_TURNS)
        if not rows:  # nothing readable since the cursor: move past what was seen
            upto = (quiet.cursor or 0, quiet.chat.last_incoming_at or self._clock.now())
            await self._store(quiet, [], upto)
            return True
        upto = (rows[-1][0], rows[-1][3])
        if not quiet.person or not any(role == "contact" for _, role, _, _ in rows):
            await self._store(quiet, [], upto)
            return True
        turns = [Turn(role, text, date) for _, role, text, date in rows]  # type: ignore[arg-type]
        known = memory_lines(await self._repo.memory_for_chat(quiet.chat.id))
        overrides = await self._repo.behaviour_overrides(quiet.chat.account_id)
        owner = (
            (overrides.get("twin") or {}).get("owner_name")  # the chat's twin's own name
            or self._settings.twin.owner_name
            or "the owner"
        )
        try:
            learned, _ = await self._brain.remember(
                turns, owner_name=owner, contact_name=quiet.chat.title or "the contact", known=known
            )
        except LLMError as exc:
            log.warning("contact memory: chat %s not read this time: %s", quiet.chat.id, exc)
            self._resting[quiet.chat.id] = self._clock.now() + RETRY_AFTER
            return False
        facts = [
            (item.kind, item.text, rows[item.turn][0] if item.turn is not None else None)
            for item in learned
        ]
        await self._store(quiet, facts, upto)
        return True

    async def _store(
        self,
        quiet: QuietChat,
        facts: list[tuple[str, str, int | None]],
        upto: tuple[int, datetime],
    ) -> None:
        from twin.services.events import EventLog

        max_facts = self._knowledge.memory_max_facts

        def work(tx: Transaction) -> Any:
            stored = tx.store_memory(quiet, facts, upto, max_facts=max_facts)
            if not stored:
                return None
            return EventLog.stage(
                tx,
                "contact.remembered",
                {"chat": quiet.chat.peer_id, "facts": len(stored), "kinds": sorted(set(stored))},
                account_id=quiet.chat.account_id,
                chat_id=quiet.chat.id,
            )

        staged = await self._repo.transaction(work, hot=False)
        self._events.publish(staged)
