"""The conversation API (`/api/v1/conversation/*`): business integrations talk to the twin in
sessions of a user, on a platform of theirs, and get the brain's judgement with each answer.

A session is a conversation of the channel instance (`[channels.conversation] instance`),
answered in the request like the HTTP chat; `user_id` and `platform` are kept in its
channel_data, and `context` is given to the brain as facts about the user for that answer.
`intent`, `confidence` and `requires_human` are the brain's structured output; `entities` (the
contacts in the message), `current_state` and `suggested_actions` are derived from it by
rules (twin.domain.webhooks): see README.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twin.channels.conversations import Conversations
from twin.channels.external import ExternalChannel
from twin.channels.notify import EscalationNote, escalation_note
from twin.channels.records import ChannelParts, Inbound
from twin.config import Settings
from twin.db.repo.sessions import SessionRow, TurnRow
from twin.domain.models import PAUSED_FOREVER
from twin.domain.webhooks import contact_in
from twin.errors import NotFound
from twin.ports import Tx
from twin.services.outbox import new_random_id
from twin.services.pipeline.generate import Escalation

__all__ = ["CHANNEL", "ConversationAnswer", "ConversationApi", "state_of"]

CHANNEL = "api"
MAX_FACTS = 20


@dataclass(frozen=True, slots=True)
class ConversationAnswer:
    message: str
    session_id: str
    intent: str
    confidence: float
    requires_human: bool
    entities: list[dict[str, str]]
    current_state: str  # active | escalated | closed
    suggested_actions: list[str]


def state_of(paused: bool, flags: Mapping[str, Any]) -> str:
    if paused or flags.get("requires_human"):
        return "escalated"
    if flags.get("end_conversation"):
        return "closed"
    return "active"


def _actions(state: str, intent: str, entities: list[dict[str, str]]) -> list[str]:
    actions = []
    if state == "escalated":
        actions.append("handoff_to_human")
    if entities:
        actions.append("save_contact")
    if intent in ("request", "scheduling") and state == "active":
        actions.append("follow_up")
    if state == "closed":
        actions.append("close_session")
    return actions


def _facts(context: Mapping[str, Any]) -> list[str]:
    """The caller's context as facts about the user (bounded)."""
    facts = []
    for key, value in list(context.items())[:MAX_FACTS]:
        text = value if isinstance(value, str) else repr(value)
        facts.append(f"About the person you are talking to: {key} = {text[:300]}")
    return facts


class ConversationApi:
    def __init__(self, settings: Settings, parts: ChannelParts) -> None:
        self.settings = section = settings.channels.conversation
        self._repo = parts.repo
        self._events = parts.events
        self._notifier = parts.notifier
        self.conversations = Conversations.of(CHANNEL, section, parts)
        # The external channel, when it is on (lifecycle): an escalation queues its
        # `operator_requested` webhook in the escalation's transaction.
        self.external: ExternalChannel | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def chat(
        self,
        message: str,
        user_id: str,
        platform: str,
        session_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ConversationAnswer:
        thread = session_id or uuid.uuid4().hex
        conversations = self.conversations
        data: dict[str, Any] = {"user_id": user_id, "platform": platform}
        if (
            self.settings.telegram_user_ids
            and platform.lower() == "telegram"
            and user_id.isdigit()
            and 0 < int(user_id) < 2**63
        ):
            data["telegram_user_id"] = int(user_id)  # vouched for by the integration
        entities = [
            {"type": kind, "value": value} for kind, value in (contact_in(message) or {}).items()
        ]
        async with conversations.turn(thread):
            planned = await conversations.plan(Inbound(thread, message, data=data))
            if planned.reply is None:
                text = planned.away or ""
                state = "active" if planned.away is not None else "escalated"
                return ConversationAnswer(
                    text,
                    thread,
                    "unknown",
                    0.0,
                    state == "escalated",
                    entities,
                    state,
                    _actions(state, "unknown", entities),
                )
            stored = (planned.chat.channel_data.get("contexts") or {}).get(user_id) or {}
            facts = _facts({**stored, **(context or {})})  # PUT /messaging/context, then this
            result = await conversations.generate(planned, facts)
            answer = await conversations.deliver(planned, result)
        flags = answer.flags
        intent = str(flags.get("intent") or "unknown")
        state = state_of(isinstance(result, Escalation), flags)
        return ConversationAnswer(
            answer.text,
            thread,
            intent,
            float(flags.get("confidence") or 0.0),
            bool(flags.get("requires_human")) or isinstance(result, Escalation),
            entities,
            state,
            _actions(state, intent, entities),
        )

    async def sessions(self, user_id: str) -> list[SessionRow]:
        instance = await self.conversations.instance()
        return await self._repo.sessions_of(instance.id, user_id)

    async def _session(self, session_id: str) -> Any:
        from twin.channels.records import peer_of

        instance = await self.conversations.instance()
        try:
            return await self._repo.get_chat_by_peer(instance.id, peer_of(session_id))
        except NotFound:
            raise NotFound(f"no session '{session_id}'") from None

    async def history(
        self, session_id: str, limit: int, offset: int
    ) -> tuple[list[TurnRow], int, str | None]:
        chat = await self._session(session_id)
        rows, total = await self._repo.turns(chat.id, limit=limit, offset=offset)
        return rows, total, chat.channel_data.get("platform")

    async def escalate(
        self, session_id: str, reason: str, priority: str, context: Mapping[str, Any]
    ) -> None:
        """Pause the session for a person, tell the owner, and (with the external channel)
        fire an `operator_requested` webhook — one transaction, then the note."""
        chat = await self._session(session_id)
        random_id = new_random_id()

        def escalate(tx: Tx) -> list[Any]:
            tx.update_chat(chat.id, paused_until=PAUSED_FOREVER)
            staged = self._events.stage(
                tx,
                "conversation.escalated",
                {
                    "chat": chat.peer_id,
                    "thread": session_id,
                    "channel": CHANNEL,
                    "reason": reason,
                    "priority": priority,
                    "notify_random_id": random_id,
                },
                account_id=chat.account_id,
                chat_id=chat.id,
            )
            if self.external is not None:
                fields = {"reason": reason, "priority": priority, "context": dict(context)}
                self.external.operator_requested_tx(tx, chat, fields)
            return [staged]

        self._events.publish(*await self._repo.transaction(escalate))
        if self.external is not None:
            self.external.wake_sender()
        if self._notifier is not None:
            instance = await self.conversations.instance()
            note = escalation_note(
                CHANNEL,
                self.settings.instance,
                session_id,
                chat.peer_id,
                chat.channel_data.get("user_id"),
                reason,
                reason,
            )
            self._notifier.notify(
                EscalationNote(
                    instance.twin_id,
                    self.settings.twin == "default",
                    note,
                    random_id,
                    0,
                    self.settings.notify,
                )
            )
