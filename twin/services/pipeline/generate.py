"""Generate: conversation + style + memory → prompt → brain → structured flags → a Draft.

Reads only what generation needs (the conversation, the style profile, voice notes through
speech-to-text) and writes only transcripts; the job's states are the executor's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin.config import Settings
from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.domain.conversation import StyleProfile, Turn, latest_from_contact
from twin.domain.decide import Action
from twin.domain.models import Direction, MessageKind, ReplyState
from twin.domain.prompt_system import Reference
from twin.domain.structured import BrainReply
from twin.errors import TwinError
from twin.ports import (
    Accounts,
    Clock,
    ReplyStreaming,
    SpeechToText,
    Store,
    TextToSpeech,
    Thinker,
)
from twin.services.directory import AccountDirectory
from twin.services.memory import memory_lines
from twin.services.pipeline.caches import StyleRead, Styles
from twin.services.pipeline.fastpath import HISTORY_TURNS
from twin.services.pipeline.records import Draft
from twin.services.policy import Behaviour, persona_of

if TYPE_CHECKING:
    from twin.brain.service import BrainResult
    from twin.db.repo.history import ConversationRow
    from twin.services.corrections import Corrections
    from twin.services.knowledge import KnowledgeBase


class Unanswerable(TwinError):
    """The message cannot be understood (e.g. a voice note that cannot be transcribed): no
    retry can change that, so it never goes through the retry path."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """The brain handed the chat to the owner (requires_human, or no usable text)."""

    reply: BrainReply
    flags: dict[str, Any]
    usage: dict[str, Any]
    summary: dict[str, Any]


class Generator:
    def __init__(
        self,
        *,
        settings: Settings,
        repo: Store,
        accounts: Accounts,
        directory: AccountDirectory,
        brain: Thinker | None,
        stt: SpeechToText | None,
        tts: TextToSpeech | None,
        styles: Styles,
        clock: Clock,
        knowledge: KnowledgeBase | None = None,
        corrections: Corrections | None = None,
    ) -> None:
        self._corrections = corrections  # the owner's corrections: the first examples
        self._settings = settings
        self._repo = repo
        self._accounts = accounts
        self._directory = directory
        self._brain = brain
        self._stt = stt
        self._tts = tts
        self._styles = styles
        self._clock = clock
        self._knowledge = knowledge

    @property
    def answers(self) -> bool:
        """Whether a model is configured (without one nothing is generated)."""
        return self._brain is not None

    async def generate(
        self,
        reply: ReplyRecord,
        chat: ChatRecord,
        behaviour: Behaviour,
        incoming: Sequence[MessageRecord],
        rows: list[ConversationRow] | None,
        style_read: StyleRead | None,
    ) -> Draft | Escalation:
        """The answer to `incoming` (voice notes transcribed first). `rows`/`style_read`: the
        conversation and style profile when read already with the move to `generating`."""
        await self._transcribe(incoming, chat)
        if reply.decision.get("action") == Action.AWAY.value:
            return Draft(behaviour.schedule.away_message, False, {"away": True})
        if behaviour.twin.greeting and _only_start(incoming):
            # A bot's /start: the twin's greeting is the answer (no model call)
            return Draft(behaviour.twin.greeting, False, {"greeting": True})
        if rows is None:
            rows = await self._repo.conversation(reply.account_id, chat.id, limit=HISTORY_TURNS)
        turns, last_ids = turns_of(chat, rows)
        style = await self._styles.get(reply.account_id, style_read)
        thought = await self._think(chat, behaviour, turns, last_ids, style)
        if isinstance(thought, Escalation):
            return thought
        text = thought.text
        voice = self._wants_voice(behaviour, incoming, text)
        greeting = behaviour.twin.greeting if reply.decision.get("greeting") else ""
        if greeting:
            text = f"{greeting}\n\n{text}"
        return Draft(text, voice, thought.flags, thought.usage, thought.summary)

    async def _think(
        self,
        chat: ChatRecord,
        behaviour: Behaviour,
        turns: list[Turn],
        last_ids: list[int],
        style: StyleProfile | None,
    ) -> Draft | Escalation:
        """The brain's answer with its flags, usage and the chat's new summary."""
        assert self._brain is not None  # the plan skips every message without a brain
        reference = await self._reference(chat, behaviour, turns)
        result = await self._brain.reply(
            **self._brain_input(chat, behaviour, turns, style),
            reference=reference,
            examples=await self._examples(chat, behaviour, turns),
        )
        return thought_of(result, last_ids)

    async def stream(
        self,
        chat: ChatRecord,
        behaviour: Behaviour,
        rows: list[ConversationRow] | None = None,
        style_read: StyleRead | None = None,
    ) -> Streamed:
        """The answer to the conversation's newest messages as it is generated (plain text,
        HTTP channels): iterate `stream`, then `finish()` gives the Draft or Escalation.
        `rows`/`style_read` as for `generate`."""
        assert self._brain is not None
        if rows is None:
            rows = await self._repo.conversation(chat.account_id, chat.id, limit=HISTORY_TURNS)
        turns, last_ids = turns_of(chat, rows)
        style = await self._styles.get(chat.account_id, style_read)
        reference = await self._reference(chat, behaviour, turns)
        stream = await self._brain.stream_reply(
            **self._brain_input(chat, behaviour, turns, style),
            reference=reference,
            examples=await self._examples(chat, behaviour, turns),
        )
        return Streamed(stream, last_ids)

    async def _reference(
        self, chat: ChatRecord, behaviour: Behaviour, turns: list[Turn]
    ) -> Reference | None:
        """What the twin knows for this answer: its knowledge base's best passages and what
        it remembers of the contact (from any channel)."""
        if self._knowledge is None:
            return None
        memory = self._settings.knowledge.memory
        context = await self._knowledge.context(
            chat.account_id, chat.id, turns, chat.summary, memory=memory
        )
        lines = memory_lines(context.facts)
        if not context.passages and not context.has_knowledge and not lines:
            return None
        gaps = behaviour.twin.knowledge_gaps
        return Reference(tuple(context.passages), lines, gaps, context.has_knowledge)

    def forget_corrections(self, account_id: int) -> None:
        """A correction was deleted: read the account's again at its next answer."""
        if self._corrections is not None:
            self._corrections.forget(account_id)

    async def _examples(
        self, chat: ChatRecord, behaviour: Behaviour, turns: list[Turn]
    ) -> list[tuple[str, str]]:
        """The owner's corrections most like the contact's latest messages (twin.services.
        corrections): the prompt's first examples."""
        question = latest_from_contact(turns)
        if self._corrections is None or not question:
            return []
        return await self._corrections.examples(
            chat.account_id,
            chat.id,
            question,
            scope=behaviour.twin.corrections_scope,
        )

    def _brain_input(
        self,
        chat: ChatRecord,
        behaviour: Behaviour,
        turns: list[Turn],
        style: StyleProfile | None,
    ) -> dict[str, Any]:
        return {
            "history": turns,
            "persona": persona_of(behaviour.twin),
            "contact_name": chat.title or "the contact",
            "style": style,
            "summary": chat.summary,
            "summary_covers": 0,
            "chat_id": chat.peer_id,
            "now": self._clock.now(),
        }

    async def _transcribe(self, incoming: Sequence[MessageRecord], chat: ChatRecord) -> None:
        """Voice notes become text the brain can read (stored with the message)."""
        for message in incoming:
            if message.kind is MessageKind.TEXT or message.transcript:
                continue
            if self._stt is None:
                raise Unanswerable("no speech-to-text provider is configured")
            account = await self._accounts.get(await self._directory.name_of(message.account_id))
            data = await account.download_media(chat.peer_id, message.tg_message_id or 0)
            from twin.voice.errors import AudioError, TooLong

            try:
                transcript = await self._stt.transcribe(data, language=self._settings.stt.language)
            except (TooLong, AudioError) as exc:
                raise Unanswerable(f"voice note cannot be transcribed: {exc}") from exc
            await self._repo.update_message(
                message.id, transcript=transcript.text, cost_usd=transcript.cost_usd
            )

    def _wants_voice(
        self, behaviour: Behaviour, incoming: Sequence[MessageRecord], text: str
    ) -> bool:
        mode = behaviour.twin.voice_replies
        if self._tts is None or mode == "never" or len(text) > behaviour.twin.voice_max_chars:
            return False
        return mode == "always" or any(m.kind is MessageKind.VOICE for m in incoming)


@dataclass
class Streamed:
    """A reply being streamed: its text pieces, then its Draft or Escalation."""

    stream: ReplyStreaming
    last_ids: list[int]

    def finish(self) -> Draft | Escalation:
        result = self.stream.result
        if result is None:
            raise RuntimeError("the stream was not consumed to its end")
        return thought_of(result, self.last_ids)


def thought_of(result: BrainResult, last_ids: list[int]) -> Draft | Escalation:
    """The brain's result as what the pipeline stores: text, flags, usage, the new summary;
    an Escalation when the brain asks for the owner or has nothing to say."""
    summary: dict[str, Any] = {}
    if result.summary_changed and result.summary_covers:
        summary = {
            "summary": result.summary,
            "summary_upto_message_id": last_ids[result.summary_covers - 1],
        }
    usage = {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        # an unknown model's cost is unknown, not free (twin.brain.pricing)
        "cost_usd": float(result.cost.usd) if result.cost.priced else None,
    }
    brain_reply = result.reply
    flags = {
        "requires_human": brain_reply.requires_human,
        "intent": brain_reply.intent,
        "confidence": brain_reply.confidence,
        "end_conversation": brain_reply.end_conversation,
    }
    if result.completion.tool_uses:  # stored with the answer: what it was based on
        flags["tools"] = [use.as_dict() for use in result.completion.tool_uses]
    if result.prompt.passages:  # the knowledge it was given, and what it says it used
        used = set(brain_reply.sources)
        flags["knowledge"] = {
            "given": [p.as_dict() for p in result.prompt.passages],
            "used": [p.as_dict() for p in result.prompt.passages if p.label in used],
        }
    if brain_reply.requires_human or not brain_reply.text.strip():
        return Escalation(brain_reply, flags, usage, summary)
    return Draft(brain_reply.text.strip(), False, flags, usage, summary)


def turns_of(chat: ChatRecord, rows: Sequence[ConversationRow]) -> tuple[list[Turn], list[int]]:
    """The conversation the brain reads: `rows` (newest first) after the stored summary,
    oldest first, without bubbles that were never sent; and the message id of each turn."""
    turns: list[Turn] = []
    ids: list[int] = []
    for row in reversed(rows):
        if chat.summary_upto_message_id is not None and row.id <= chat.summary_upto_message_id:
            continue
        if row.direction is Direction.OUTGOING and row.state is not ReplyState.SENT:
            continue  # never sent: not part of the conversation
        text = row.transcript if row.kind is not MessageKind.TEXT and row.transcript else row.text
        if not text:
            continue
        role = "contact" if row.direction is Direction.INCOMING else "owner"
        kind = "voice" if row.kind is MessageKind.VOICE else "text"
        turns.append(Turn(role=role, text=text, at=row.date, kind=kind))
        ids.append(row.id)
    return turns, ids


def _only_start(incoming: Sequence[MessageRecord]) -> bool:
    """Whether the messages are a bot's /start command (with or without its payload)."""
    texts = [(m.text or "").strip() for m in incoming]
    return bool(texts) and all(t == "/start" or t.startswith("/start ") for t in texts)
