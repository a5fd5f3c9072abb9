"""The owner's corrections made on their phone: a sent bubble of the twin's edited or deleted
(phone_edited, phone_deleted), or the owner writing right after the twin's reply (followed_up).
Each is recorded with what the contact asked, for twin.services.corrections to pick examples
from; the takeover step (takeover.py) sees the updates and calls here."""

from __future__ import annotations

import logging

from twin.db.records import ChatRecord, MessageRecord
from twin.domain.models import Direction, OwnerActivity, ReplyState
from twin.ports import Store, Tx
from twin.services.events import EventLog, StagedEvent

log = logging.getLogger("twin.pipeline")


class OwnerCorrections:
    def __init__(self, repo: Store, events: EventLog) -> None:
        self._repo = repo
        self._events = events

    async def followed_up(self, activity: OwnerActivity, chat: ChatRecord, minutes: float) -> None:
        """The owner wrote right after the twin's sent reply (the chat's message before theirs
        is one of its bubbles, sent at most `minutes` earlier): what the contact got from
        "the owner" is the twin's text and then theirs — a correction, `followed_up`. Only
        the first message after the twin's counts (the next one follows the owner's own), and
        not after a draft the owner sent (that text is the owner's already). A learning
        signal: a failure to record it is logged, never in the way of the hand-over."""
        try:
            await self._followed_up(activity, chat, minutes)
        except Exception as exc:
            log.warning("chat %s: a followed_up correction was not recorded: %s", chat.id, exc)

    async def _followed_up(self, activity: OwnerActivity, chat: ChatRecord, minutes: float) -> None:
        before = await self._repo.message_before(chat.account_id, chat.id, activity.message_id)
        if (
            before is None
            or before.reply_id is None
            or before.direction is not Direction.OUTGOING
            or before.state is not ReplyState.SENT
        ):
            return
        if (activity.date - before.date).total_seconds() > minutes * 60:
            return
        if (await self._repo.get_reply(before.reply_id)).decision.get("draft_id") is not None:
            return
        sent = [
            m.text or ""
            for m in await self._repo.reply_messages(before.reply_id)
            if m.direction is Direction.OUTGOING and m.state is ReplyState.SENT
        ]
        twin_text = "\n".join(t for t in sent if t).strip()
        final = f"{twin_text}\n{activity.text.strip()}" if twin_text else activity.text.strip()
        await self.record(before, "followed_up", final, twin_text=twin_text)

    async def record(
        self,
        message: MessageRecord,
        kind: str,
        owner_text: str | None,
        *,
        twin_text: str | None = None,
    ) -> None:
        """A correction of one of the twin's sent bubbles (none for the owner's own messages,
        which have no reply job, or for a bubble not sent); `twin_text`: the bubble's unless
        given."""
        if message.reply_id is None or message.state is not ReplyState.SENT:
            return
        reply_id = message.reply_id
        asked = [
            m.transcript or m.text or ""
            for m in await self._repo.reply_messages(reply_id)
            if m.direction is Direction.INCOMING
        ]
        context = "\n".join(asked).strip()
        if not context:
            return

        def work(tx: Tx) -> StagedEvent:
            correction = tx.record_correction(
                message.account_id,
                message.chat_id,
                kind,
                context=context,
                twin_text=(message.text or "") if twin_text is None else twin_text,
                owner_text=owner_text,
            )
            data = {"correction": correction, "kind": kind, "reply": reply_id}
            return self._events.stage(
                tx,
                "correction.recorded",
                data,
                account_id=message.account_id,
                chat_id=message.chat_id,
            )

        self._events.publish(await self._repo.transaction(work))

