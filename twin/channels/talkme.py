"""The TalkMe voice-call channel (`POST /webhook/talkme`): the platform turns a call into text
webhooks; each caller (`user_id`) is one conversation, answered through the pipeline's steps
(twin.channels.conversations).

* A session (`session_id`) is the caller's current call: the first message of a new session
  gets the twin's greeting; the session and the caller's phone are kept with the conversation
  (`chats.channel_data`) and the phone is returned in `metadata.phone`.
* `end_conversation` is the brain's structured flag, or an escalation (`requires_human`).
* A delivery with a `timestamp` is stored once per (session, timestamp, message): the platform
  sending it again gets the same answer, without a second generation.
* Voice platforms hang up on slow webhooks: past `answer_deadline` the caller hears the holding
  phrase; the turn goes on in the background, and its answer is said at the caller's next
  turn, before the answer to that turn (`channel_data.held`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from twin.channels.conversations import (
    ChannelParts,
    Conversations,
    Inbound,
    Planned,
    peer_of,
)
from twin.config import Settings
from twin.errors import NotFound
from twin.ports import Tx

CHANNEL = "talkme"
log = logging.getLogger("twin.channels.talkme")
LOG = {"channel": CHANNEL}  # structured field on every line (JSON logs)


@dataclass(frozen=True, slots=True)
class Call:
    """One webhook of a call."""

    session_id: str
    user_id: str
    message: str
    phone_number: str | None = None
    timestamp: str | None = None
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class Said:
    """What the caller hears."""

    message: str
    session_id: str
    end_conversation: bool
    phone: str | None
    user_name: str | None
    held: bool = False  # the holding phrase: the answer comes at the next turn


@dataclass(slots=True)
class _Waiter:
    """Between a webhook and its turn: who finished first (no await between check and set)."""

    answered: bool = False
    given_up: bool = False


@dataclass(frozen=True, slots=True)
class SessionStats:
    user_id: str
    session_id: str | None
    phone: str | None
    messages: int
    last_message_at: datetime | None


@dataclass(frozen=True, slots=True)
class Stats:
    window_minutes: float
    active_sessions: int
    users: int
    messages: int
    sessions: list[SessionStats]


class TalkMe:
    def __init__(self, settings: Settings, parts: ChannelParts) -> None:
        self.settings = section = settings.channels.talkme
        self._repo = parts.repo
        self._events = parts.events
        self._clock = parts.clock
        self.conversations = Conversations.of(CHANNEL, section, parts)
        self._turns: set[asyncio.Task[Said]] = set()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def answer(self, call: Call) -> Said:
        """The answer within `answer_deadline`, else the holding phrase (the turn finishes in
        the background and its answer is said at the next turn)."""
        waiter = _Waiter()
        turn = asyncio.create_task(self._turn(call, waiter), name=f"talkme {call.session_id}")
        self._turns.add(turn)
        turn.add_done_callback(self._turns.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(turn), self.settings.answer_deadline)
        except TimeoutError:
            if waiter.answered:  # it finished just now: say it
                return await turn
            waiter.given_up = True
            log.warning(
                "[TALK_ME] session %s: no answer within %.1f s; holding phrase said, the answer "
                "follows at the next turn",
                call.session_id,
                self.settings.answer_deadline,
                extra=LOG,
            )
            turn.add_done_callback(_log_failure)
            return Said(
                self.settings.holding_phrase,
                call.session_id,
                end_conversation=False,
                phone=call.phone_number,
                user_name=call.user_name,
                held=True,
            )

    async def aclose(self) -> None:
        """Shutdown: turns still running in the background are cancelled (their jobs are
        recorded cancelled, `no_client`)."""
        for turn in list(self._turns):
            turn.cancel()
        await asyncio.gather(*self._turns, return_exceptions=True)

    async def _turn(self, call: Call, waiter: _Waiter) -> Said:
        conversations = self.conversations
        async with conversations.turn(call.user_id):
            update: dict[str, Any] = {"user_id": call.user_id}
            if call.phone_number:
                update["phone"] = call.phone_number
            planned = await conversations.plan(
                Inbound(
                    call.user_id,
                    call.message,
                    user_name=call.user_name,
                    key=self._delivery_key(call),
                    session=call.session_id,
                    data=update,
                )
            )
            data = planned.previous
            new_session = planned.new_session
            phone = call.phone_number or data.get("phone")
            held = data.get("held") or {}
            if planned.repeated is not None:
                log.info(
                    "[TALK_ME] session %s: repeated delivery, same answer",
                    call.session_id,
                    extra=LOG,
                )
                text = planned.repeated.text or ""
                if held.get("reply") == planned.repeated.id:  # it was held: say it now
                    text = held.get("text") or text
                    await self._set_held(planned, None)
                waiter.answered = True
                return self._said(call, text, planned.repeated.flags, False, phone)
            if planned.away is not None:  # outside working hours: say so, and end the call
                waiter.answered = True
                return self._said(call, planned.away, {}, True, phone)
            if planned.reply is None:  # escalated earlier: a person takes over
                waiter.answered = True
                return self._said(call, "", {}, True, phone)
            answer = await conversations.deliver(planned, await conversations.generate(planned))
            earlier = held.get("text") if not new_session else None
            text = "\n\n".join(t for t in (earlier, answer.text) if t)
            if waiter.given_up:  # the caller heard the holding phrase: say it next turn
                await self._set_held(planned, {"reply": answer.reply_id, "text": text})
            else:
                waiter.answered = True
                if held:
                    await self._set_held(planned, None)
            log.info(
                "[TALK_ME] session %s user %s: answered (%d chars)%s",
                call.session_id,
                call.user_id,
                len(answer.text),
                ", with the answer held from the turn before" if earlier else "",
                extra=LOG,
            )
            return self._said(call, text, answer.flags, answer.escalated, phone)

    def _said(
        self, call: Call, text: str, flags: Mapping[str, Any], escalated: bool, phone: str | None
    ) -> Said:
        end = escalated or bool(flags.get("end_conversation"))
        return Said(text, call.session_id, end, phone, call.user_name)

    async def _set_held(self, planned: Planned, held: dict[str, Any] | None) -> None:
        """Remember the answer as held until the caller's next turn says it (the webhook that
        asked may have answered the holding phrase); cleared once said."""
        chat = planned.chat

        def work(tx: Tx) -> None:
            current = tx.get_chat(chat.id).channel_data
            tx.update_chat(chat.id, channel_data={**current, "held": held})

        await self._repo.transaction(work)

    @staticmethod
    def _delivery_key(call: Call) -> int | None:
        if not call.timestamp:
            return None  # no identity: the same words twice are two messages
        return peer_of(f"{call.session_id}\x00{call.timestamp}\x00{call.message}")

    async def _known(self, user_id: str) -> Any:
        instance = await self.conversations.instance()
        try:
            return await self._repo.get_chat_by_peer(instance.id, peer_of(user_id))
        except NotFound:
            return None

    async def forget(self, user_id: str) -> None:
        """End the caller's session and forget its memory (messages, jobs, summary). NotFound
        for an unknown caller."""
        known = await self._known(user_id)
        if known is None or not await self._repo.delete_chat(known.id):
            raise NotFound(f"no TalkMe session of user '{user_id}'")
        instance = await self.conversations.instance()
        await self._events.emit(
            "conversation.deleted",
            {"channel": CHANNEL, "thread": user_id},
            account_id=instance.id,
        )
        log.info("[TALK_ME] user %s: session ended and forgotten", user_id, extra=LOG)

    async def stats(self, minutes: float) -> Stats:
        instance = await self.conversations.instance()
        since = self._clock.now() - timedelta(minutes=minutes)
        rows = await self._repo.conversation_activity(instance.id, since)
        sessions = [
            SessionStats(
                user_id=chat.external_id or "",
                session_id=chat.channel_data.get("session_id"),
                phone=chat.channel_data.get("phone"),
                messages=count,
                last_message_at=chat.last_incoming_at,
            )
            for chat, count in rows
        ]
        return Stats(
            window_minutes=minutes,
            active_sessions=len({(s.user_id, s.session_id) for s in sessions}),
            users=len({s.user_id for s in sessions}),
            messages=sum(s.messages for s in sessions),
            sessions=sessions,
        )


def _log_failure(turn: asyncio.Task[Said]) -> None:
    if not turn.cancelled() and turn.exception() is not None:
        log.warning("[TALK_ME] a held turn failed: %s", turn.exception(), extra=LOG)
