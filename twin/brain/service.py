"""The brain: a chat's history in, the owner's next message out.

`Brain` owns no storage. The caller passes the chat's turns, the stored rolling summary and how
many leading turns of `history` that summary already covers; the result carries the reply, the
usage and cost of every model call, and the summary to store back (with its new coverage).

Two ways to call it that both work:

* pass the whole chat (or any long suffix) with the stored `summary_covers` index into it; or
* pass only the turns after the stored summary with `summary_covers=0`, and advance the stored
  marker by `BrainResult.summary_covers` turns afterwards.

Only turns of this one chat may be passed in: the brain keeps chats apart by never mixing inputs,
and narrows the style profile to the chat (`StyleProfile.for_chat`) so examples written in other
chats never reach the prompt.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twin.brain.errors import LLMError, LLMUnavailable
from twin.brain.port import LLM, Completion, ToolBox, ToolUser
from twin.brain.pricing import Cost, PriceTable
from twin.domain.conversation import ChatId, Persona, StyleProfile, Turn
from twin.domain.memory import MEMORY_JSON_SCHEMA, Learned, memory_messages, parse_learned
from twin.domain.prompts import OutputMode, Prompt, Reference, build_prompt, prompt_tokens
from twin.domain.structured import REPLY_JSON_SCHEMA, BrainReply, parse_reply
from twin.domain.summary import clean_summary, fold_messages, plan_fold
from twin.domain.tokens import truncate_to_tokens

__all__ = ["Brain", "BrainResult", "ReplyStream", "Usage"]

log = logging.getLogger("twin.brain")

# Conservative tokens per word of a summary (Cyrillic words estimate at ~4 tokens).
_TOKENS_PER_SUMMARY_WORD = 4


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens over all model calls of one reply (the reply itself plus any summary folds)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    estimated: bool = False  # some provider reported no usage; twin's estimate was used

    @classmethod
    def of(cls, completions: Sequence[Completion]) -> Usage:
        return cls(
            prompt_tokens=sum(c.prompt_tokens for c in completions),
            completion_tokens=sum(c.completion_tokens for c in completions),
            calls=len(completions),
            estimated=any(c.usage_estimated for c in completions),
        )


@dataclass(frozen=True)
class BrainResult:
    reply: BrainReply
    completion: Completion  # the reply call (model, provider, its own tokens)
    usage: Usage  # every call, folds included
    cost: Cost  # every call, folds included
    summary: str | None  # the summary to store (changed or not)
    summary_covers: int  # leading turns of the given `history` the summary now covers
    summary_changed: bool
    prompt: Prompt  # what was sent for the reply (for metrics and debugging)
    folds: tuple[Completion, ...] = field(default=())


@dataclass(frozen=True)
class _Prepared:
    prompt: Prompt
    summary: str | None
    covers: int
    changed: bool
    folds: tuple[Completion, ...]


class Brain:
    """Turns a conversation into the owner's next message (see the module docstring).

    `context_tokens` is the model's usable context; prompts are budgeted to
    ``context_tokens - max_output_tokens``. `summary_max_words` bounds the rolling summary;
    `fold_ratio`, `min_keep_turns` and `max_fold_calls` tune folding (twin.domain.summary).
    """

    def __init__(
        self,
        llm: LLM,
        *,
        context_tokens: int = 3000,
        max_output_tokens: int = 400,
        temperature: float = 0.7,
        prices: Mapping[str, Any] | PriceTable | None = None,
        summary_max_words: int = 150,
        summary_temperature: float = 0.2,
        fold_ratio: float = 0.5,
        min_keep_turns: int = 4,
        max_fold_calls: int = 3,
        tools: ToolBox | None = None,
        knowledge_share: float = 0.35,
    ) -> None:
        if context_tokens - max_output_tokens < 1000:
            raise ValueError(
                f"context_tokens ({context_tokens}) must exceed max_output_tokens "
                f"({max_output_tokens}) by at least 1000 tokens"
            )
        self.llm = llm
        self.context_tokens = context_tokens
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self.summary_max_words = summary_max_words
        self.summary_tokens = min(
            summary_max_words * _TOKENS_PER_SUMMARY_WORD, (context_tokens - max_output_tokens) // 4
        )
        self.summary_temperature = summary_temperature
        self.fold_ratio = fold_ratio
        self.min_keep_turns = min_keep_turns
        self.max_fold_calls = max_fold_calls
        self.tools = tools  # HTTP tools the model may call while answering (not streaming)
        self.knowledge_share = knowledge_share  # of the prompt budget passages may take

    @property
    def budget_tokens(self) -> int:
        """Prompt budget of a reply call."""
        return self.context_tokens - self.max_output_tokens

    # -- public API ----------------------------------------------------------------------------
    async def reply(
        self,
        *,
        history: Sequence[Turn],
        persona: Persona,
        contact_name: str,
        style: StyleProfile | None = None,
        summary: str | None = None,
        summary_covers: int = 0,
        examples: Sequence[tuple[str, str]] = (),
        chat_id: ChatId | None = None,
        now: datetime | None = None,
        reference: Reference | None = None,
    ) -> BrainResult:
        """The owner's next message in this chat, as a structured `BrainReply`.

        Raises LLMUnavailable (retry later) or LLMError (permanent) from the model calls; a
        summary fold failing permanently is logged and skipped (the reply is still produced).
        PromptBudgetError (a ValueError) means the persona's core rules alone exceed the budget.
        """
        prepared = await self._prepare(
            history,
            persona,
            contact_name,
            style,
            summary,
            summary_covers,
            examples,
            chat_id,
            now,
            output="json",
            reference=reference,
        )
        if self.tools is not None and isinstance(self.llm, ToolUser):
            completion = await self.llm.complete_with_tools(
                prepared.prompt.messages,
                tools=self.tools,
                json_schema=REPLY_JSON_SCHEMA,
                max_tokens=self.max_output_tokens,
                temperature=self.temperature,
            )
        else:
            completion = await self.llm.complete(
                prepared.prompt.messages,
                json_schema=REPLY_JSON_SCHEMA,
                max_tokens=self.max_output_tokens,
                temperature=self.temperature,
            )
        return self._result(parse_reply(completion.text), completion, prepared)

    async def stream_reply(
        self,
        *,
        history: Sequence[Turn],
        persona: Persona,
        contact_name: str,
        style: StyleProfile | None = None,
        summary: str | None = None,
        summary_covers: int = 0,
        examples: Sequence[tuple[str, str]] = (),
        chat_id: ChatId | None = None,
        now: datetime | None = None,
        reference: Reference | None = None,
    ) -> ReplyStream:
        """Like `reply` but the text arrives piece by piece (plain text, no JSON): iterate the
        returned `ReplyStream`, then read its `result`. Folding happens before this returns."""
        prepared = await self._prepare(
            history,
            persona,
            contact_name,
            style,
            summary,
            summary_covers,
            examples,
            chat_id,
            now,
            output="text",
            reference=reference,
        )
        return ReplyStream(self, prepared)

    async def remember(
        self,
        turns: Sequence[Turn],
        *,
        owner_name: str,
        contact_name: str,
        known: Sequence[str] = (),
    ) -> tuple[list[Learned], Completion]:
        """What is worth remembering of a quiet conversation (twin.domain.memory): its newest
        turns that fit the prompt budget. Each fact's `turn` indexes `turns`. Raises LLMError
        like `reply`."""
        given = len(turns)
        turns = list(turns)
        messages = memory_messages(
            turns, owner_name=owner_name, contact_name=contact_name, known=known
        )
        while len(turns) > 1 and prompt_tokens(messages) > self.budget_tokens:
            turns = turns[len(turns) // 4 or 1 :]  # the oldest quarter goes first
            messages = memory_messages(
                turns, owner_name=owner_name, contact_name=contact_name, known=known
            )
        completion = await self.llm.complete(
            messages,
            json_schema=MEMORY_JSON_SCHEMA,
            max_tokens=self.max_output_tokens,
            temperature=self.summary_temperature,
        )
        offset = given - len(turns)
        learned = [
            Learned(item.kind, item.text, None if item.turn is None else item.turn + offset)
            for item in parse_learned(completion.text, len(turns))
        ]
        return learned, completion

    def prompt_size(
        self,
        *,
        history: Sequence[Turn],
        persona: Persona,
        contact_name: str,
        style: StyleProfile | None = None,
        examples: Sequence[tuple[str, str]] = (),
        chat_id: ChatId | None = None,
    ) -> int:
        """The prompt tokens `reply` would send for this (no summary, no model call): what a
        cost estimate multiplies."""
        narrowed = style.for_chat(chat_id) if style is not None else None
        now = history[-1].at if history else None
        prompt = self._build(persona, narrowed, history, None, examples, contact_name, "json", now)
        return prompt_tokens(prompt.messages)

    # -- internals -----------------------------------------------------------------------------
    def _build(
        self,
        persona: Persona,
        style: StyleProfile | None,
        window: Sequence[Turn],
        summary: str | None,
        examples: Sequence[tuple[str, str]],
        contact_name: str,
        output: OutputMode,
        now: datetime | None,
        reference: Reference | None = None,
    ) -> Prompt:
        return build_prompt(
            persona,
            style,
            list(window),
            summary,
            list(examples),
            self.budget_tokens,
            contact_name,
            output=output,
            now=now,
            reference=reference,
            knowledge_tokens=int(self.budget_tokens * self.knowledge_share),
        )

    async def _prepare(
        self,
        history: Sequence[Turn],
        persona: Persona,
        contact_name: str,
        style: StyleProfile | None,
        summary: str | None,
        summary_covers: int,
        examples: Sequence[tuple[str, str]],
        chat_id: ChatId | None,
        now: datetime | None,
        *,
        output: OutputMode,
        reference: Reference | None = None,
    ) -> _Prepared:
        history = list(history)
        covers = max(0, min(summary_covers, len(history)))
        narrowed = style.for_chat(chat_id) if style is not None else None
        if now is None and history:
            now = history[-1].at

        def build(current_summary: str | None, current_covers: int) -> Prompt:
            return self._build(
                persona,
                narrowed,
                history[current_covers:],
                current_summary,
                examples,
                contact_name,
                output,
                now,
                reference,
            )

        prompt = build(summary, covers)
        if not prompt.needs_folding:
            return _Prepared(prompt, summary, covers, False, ())

        fold_budget = self.context_tokens - self.summary_tokens
        plan = plan_fold(
            history,
            covers,
            covers + prompt.dropped_turns,
            budget_tokens=fold_budget,
            summary_tokens=self.summary_tokens,
            fold_ratio=self.fold_ratio,
            min_keep=self.min_keep_turns,
            max_chunks=self.max_fold_calls,
            owner_name=persona.owner_name,
            contact_name=contact_name,
            max_words=self.summary_max_words,
        )
        if plan is None:  # pragma: no cover - needs_folding implies a plan
            return _Prepared(prompt, summary, covers, False, ())
        if plan.skipped:
            log.info("summary: skipping %d old turns beyond the fold limit", plan.skipped)

        # a stored summary from a larger configuration is cut to this one's size
        capped = truncate_to_tokens(summary, self.summary_tokens, keep="end") if summary else None
        new_summary, new_covers, folds = capped, covers, []
        for start, end in plan.chunks:
            messages = fold_messages(
                new_summary,
                history[start:end],
                owner_name=persona.owner_name,
                contact_name=contact_name,
                max_words=self.summary_max_words,
                budget_tokens=fold_budget,
            )
            try:
                completion = await self.llm.complete(
                    messages, max_tokens=self.summary_tokens, temperature=self.summary_temperature
                )
            except LLMUnavailable:
                raise  # the reply call would fail the same way: let the caller reschedule now
            except LLMError as exc:
                log.warning("summary fold failed, replying without it: %s", exc)
                break
            folds.append(completion)
            folded = clean_summary(completion.text, self.summary_tokens)
            if not folded:
                log.warning("summary fold returned nothing; keeping the previous summary")
                break
            new_summary, new_covers = folded, end
        if new_covers == covers:
            return _Prepared(prompt, summary, covers, False, tuple(folds))
        return _Prepared(
            build(new_summary, new_covers), new_summary, new_covers, True, tuple(folds)
        )

    def _result(
        self, reply: BrainReply, completion: Completion, prepared: _Prepared
    ) -> BrainResult:
        calls = [*prepared.folds, completion]
        cost = self.prices.total((c.model, c.prompt_tokens, c.completion_tokens) for c in calls)
        return BrainResult(
            reply=reply,
            completion=completion,
            usage=Usage.of(calls),
            cost=cost,
            summary=prepared.summary,
            summary_covers=prepared.covers,
            summary_changed=prepared.changed,
            prompt=prepared.prompt,
            folds=prepared.folds,
        )


class ReplyStream:
    """Text pieces of a streamed reply; `result` (a BrainResult) once fully consumed."""

    def __init__(self, brain: Brain, prepared: _Prepared) -> None:
        self._brain = brain
        self._prepared = prepared
        self.result: BrainResult | None = None
        self._iterator = self._run()

    @property
    def prompt(self) -> Prompt:
        return self._prepared.prompt

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterator

    async def aclose(self) -> None:
        await self._iterator.aclose()

    async def _run(self) -> AsyncIterator[str]:
        brain = self._brain
        stream = brain.llm.stream(
            self._prepared.prompt.messages,
            max_tokens=brain.max_output_tokens,
            temperature=brain.temperature,
        )
        pieces: list[str] = []
        try:
            async for piece in stream:
                pieces.append(piece)
                yield piece
        finally:
            await stream.aclose()
        text = "".join(pieces).strip()
        completion = stream.completion or Completion(
            text=text,
            prompt_tokens=self._prepared.prompt.estimated_tokens,
            completion_tokens=0,
            model=brain.llm.model,
            provider=brain.llm.provider,
            usage_estimated=True,
        )
        reply = (
            parse_reply(text)
            if text.startswith("{")
            else BrainReply(text=text, requires_human=not text, confidence=0.5 if text else 0.0)
        )
        self.result = brain._result(reply, completion, self._prepared)
