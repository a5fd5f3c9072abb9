"""Telegram's delivery: the read receipt, typing, bubbles with stored random_ids, voice notes,
each send and its record.

Exactly once: every bubble's random_id is stored when the reply enters `sending`; a resumed job
skips the bubbles recorded as sent and sends the others with their stored random_id, which
Telegram refuses as a duplicate (SendResult.duplicate) for one that went out before a crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.domain.models import Direction, MessageKind, ReplyState, SendResult
from twin.domain.policies.delays import (
    HumanizeConfig,
    bubble_pause,
    split_bubbles,
    typing_duration,
)
from twin.errors import Conflict, TwinError
from twin.ports import Accounts, Clock, Messenger, Store, TextToSpeech, Tx
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog, StagedEvent
from twin.services.outbox import new_random_id
from twin.services.pipeline.records import Draft, Sending
from twin.services.pipeline.runs import Run
from twin.services.policy import Behaviour
from twin.voice.models import VoiceNote

log = logging.getLogger("twin.pipeline")

TYPING_REFRESH = 4.5  # Telegram shows an action for ~5 s per call
# (account name, chat peer id) -> the smallest id of its messages intake could not store yet
UnstoredFloor = Callable[[str, int], int | None]


class TelegramDelivery:
    def __init__(
        self,
        *,
        repo: Store,
        events: EventLog,
        accounts: Accounts,
        directory: AccountDirectory,
        tts: TextToSpeech | None,
        clock: Clock,
        rng: random.Random,
        unstored_floor: UnstoredFloor,
    ) -> None:
        self._repo = repo
        self._events = events
        self._accounts = accounts
        self._directory = directory
        self._tts = tts
        self._clock = clock
        self._rng = rng
        self.unstored_floor = unstored_floor  # Intake.unstored_floor, wired by lifecycle

    async def _account(self, name: str) -> Messenger:
        account = await self._accounts.get(name)
        account.require_authorized()
        return account

    async def open(
        self, reply: ReplyRecord, chat: ChatRecord, incoming: Sequence[MessageRecord]
    ) -> Awaitable[None]:
        """The read receipt: the contact sees "read" first, as when a person opens the chat.
        Never past a message intake could not store yet: a chat marked read past it would hide
        it from the reconciliation sweep's "unread" view and from the owner."""
        name = await self._directory.name_of(reply.account_id)
        account = await self._account(name)
        read_upto = max(m.tg_message_id or 0 for m in incoming)
        floor = self.unstored_floor(name, chat.peer_id)
        if floor is not None:
            read_upto = min(read_upto, floor - 1)
        return account.mark_read(chat.peer_id, read_upto) if read_upto > 0 else asyncio.sleep(0)

    def stage_tx(
        self,
        tx: Tx,
        reply: ReplyRecord,
        draft: Draft,
        behaviour: Behaviour,
        linked: Sequence[MessageRecord],
    ) -> list[MessageRecord]:
        """Every bubble with its random_id (a voice reply is one bubble); bubbles of an earlier
        generation that never went out are cancelled."""
        texts = (
            [draft.text]
            if draft.voice
            else split_bubbles(draft.text, behaviour.humanize.bubble_max_chars)
        )
        for stale in linked:
            if stale.direction is Direction.OUTGOING and stale.tg_message_id is None:
                tx.update_message(stale.id, state=ReplyState.CANCELLED, state_reason="regenerated")
        return [
            tx.add_outgoing(
                reply.account_id,
                reply.chat_id,
                text=bubble,
                kind=MessageKind.VOICE if draft.voice else MessageKind.TEXT,
                reply_id=reply.id,
                bubble_index=index,
                random_id=new_random_id(),
                state=ReplyState.SENDING,
            )
            for index, bubble in enumerate(texts)
        ]

    async def deliver(self, sending: Sending, run: Run) -> None:
        """Send the stored bubbles in order, each with its stored random_id, typing first."""
        reply, chat = sending.reply, sending.chat
        humanize = sending.policy.humanize
        account = await self._account(await self._directory.name_of(reply.account_id))
        bubbles = sorted(sending.parts, key=lambda m: m.bubble_index or 0)
        unsent = [i for i, bubble in enumerate(bubbles) if bubble.state is not ReplyState.SENT]
        still_sending = True  # as of the last transaction (the one that read or set `sending`)
        finished = False
        for position, bubble in enumerate(bubbles):
            if bubble.state is ReplyState.SENT:
                continue
            if position:
                pause = bubble_pause(humanize, self._rng)
                if not await self._clock.sleep(pause.seconds, run.cancelled):
                    return
            voice = bubble.kind is MessageKind.VOICE
            note = await self._synthesize(bubble.text or "", reply.account_id) if voice else None
            if voice and note is None:
                voice = False  # TTS failed: the reply goes as text rather than being lost
            await self._act(account, chat.peer_id, bubble.text or "", voice, humanize, run)
            # A cancellation raises the flag before it is committed, so flag + the state seen
            # by the last transaction cover every cancellation committed before this send.
            if run.cancelled.is_set() or not still_sending:
                return
            result = await self._send(account, chat.peer_id, bubble, note)
            last = position == unsent[-1]
            still_sending, finished = await self._record(sending, bubble, result, last)
            if last and not finished:
                raise Conflict(f"reply {reply.id} is no longer sending")
        if not finished:  # every bubble had gone out before (a resumed job)
            now = self._clock.now()
            event = await self._repo.transaction(
                lambda tx: self._finish_sent_tx(tx, reply, chat, len(bubbles), now)
            )
            self._events.publish(event)

    async def _send(
        self, account: Messenger, peer_id: int, bubble: MessageRecord, note: VoiceNote | None
    ) -> SendResult:
        random_id = bubble.random_id or 0  # every bubble is stored with one
        if note is not None:
            return await account.send_voice(
                peer_id,
                note.ogg,
                duration=note.duration_s,
                waveform=note.waveform,
                random_id=random_id,
            )
        return await account.send_text(peer_id, bubble.text or "", random_id=random_id)

    async def _record(
        self, sending: Sending, bubble: MessageRecord, result: SendResult, last: bool
    ) -> tuple[bool, bool]:
        """Record a sent bubble (the last one closes the reply in the same transaction):
        (whether the reply is still sending, whether it was finished)."""
        reply, chat, count = sending.reply, sending.chat, len(sending.parts)
        sent_at = self._clock.now()
        # Dated like Telegram dates messages, in whole seconds: the history is ordered by
        # (date, id), and a bubble dated to the microsecond would sort after a contact's
        # message of the same second that it actually preceded (found by bench/pipeline.py:
        # the model was then shown a conversation ending in the owner's words).
        sent_date = sent_at.replace(microsecond=0)

        def record(tx: Tx) -> tuple[list[StagedEvent], bool, bool]:
            if result.message_id is not None:
                tx.mark_sent(bubble.id, result.message_id, date=sent_date)
            else:
                tx.update_message(bubble.id, state=ReplyState.SENT)
            events = [
                self._events.stage_reply(
                    tx,
                    "bubble.sent",
                    reply,
                    index=bubble.bubble_index,
                    message_id=result.message_id,
                    duplicate=result.duplicate,
                )
            ]
            if not last:
                return events, tx.get_reply(reply.id).state is ReplyState.SENDING, False
            # The reply is complete: close it in the same transaction.
            try:
                done = self._finish_sent_tx(tx, reply, chat, count, sent_at)
            except Conflict:
                return events, False, False
            return [*events, done], True, True

        events, still_sending, finished = await self._repo.transaction(record)
        self._events.publish(*events)
        return still_sending, finished

    def _finish_sent_tx(
        self, tx: Tx, reply: ReplyRecord, chat: ChatRecord, bubbles: int, now: datetime
    ) -> StagedEvent:
        done = tx.update_reply(reply.id, expect_state=ReplyState.SENDING, state=ReplyState.SENT)
        tx.finish_reply_messages(reply.id, ReplyState.SENT, None)
        tx.update_chat(chat.id, last_outgoing_at=now)
        return self._events.stage_reply(tx, "reply.sent", done, bubbles=bubbles)

    async def _synthesize(self, text: str, account_id: int) -> VoiceNote | None:
        """The bubble in the voice of the account's twin (else the configured voice)."""
        from twin.voice.errors import SpeechError

        assert self._tts is not None  # a voice bubble is staged only with a TTS provider
        try:
            voice = await self._repo.twin_voice(account_id)
            return await self._tts.synthesize(
                text, voice_id=voice.get("voice_id"), provider=voice.get("provider")
            )
        except SpeechError as exc:
            log.warning("text-to-speech failed (%s); sending the reply as text", exc)
            return None

    async def _act(
        self,
        account: Messenger,
        peer_id: int,
        text: str,
        voice: bool,
        humanize: HumanizeConfig,
        run: Run,
    ) -> None:
        """Show "typing…"/"recording voice…" for a length-based time (cancellable)."""
        delay = typing_duration(humanize, self._rng, text, voice=voice).seconds
        action = "record_voice" if voice else "typing"
        remaining = delay
        while remaining > 0 and not run.cancelled.is_set():
            with contextlib.suppress(TwinError):
                await account.set_action(peer_id, action)
            step = min(TYPING_REFRESH, remaining)
            if not await self._clock.sleep(step, run.cancelled):
                return
            remaining -= step
