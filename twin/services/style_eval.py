"""`twin style eval`: how much the twin sounds like its owner, measured on the owner's real answers.

1. `read_corpus` reads the newest messages of the account's private chats through Telegram (the
   twin's own replies marked, as `twin style build` leaves them out) into answers and messages
   (twin.domain.style_eval).
2. `prepare` holds out N answers; the owner's other messages are the reference. The style
   profile the prompt gets loses every example that is one of the held-out messages, and the
   owner's corrections whose text is one are left out too: the answer is never in the prompt.
3. `estimate` gives the prompt tokens the calls will send (the prompts built as `Brain.reply`
   builds them), at most `max_output_tokens` back each, and the price of that.
4. `answer` has the twin answer each held-out context with the configured model, persona, style
   and corrections (not the knowledge base: the eval is about how, not what), the text split into
   messages as Telegram delivery splits it.
5. `measure` compares (twin.domain.style_score, twin.services.style_authorship) and gives the
   result `GET /style/evals` serves and the HTML report shows (twin.services.style_report).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

from twin.brain.errors import LLMError
from twin.brain.pricing import Cost
from twin.brain.service import Brain
from twin.domain.conversation import StyleProfile, latest_from_contact
from twin.domain.policies.delays import split_bubbles
from twin.domain.style_eval import Corpus, Line, Sample, corpus_of, hold_out
from twin.domain.style_score import (
    FEATURES,
    TELLS,
    distribution,
    js_distance,
    overall,
    tell_rates,
)
from twin.domain.style_text import norm
from twin.ports import Store
from twin.services.corrections import CANDIDATES, pick_examples
from twin.services.policy import Behaviour, persona_of
from twin.services.style_authorship import train

__all__ = [
    "Answered",
    "NothingToScore",
    "Prepared",
    "answer",
    "estimate",
    "measure",
    "prepare",
    "read_corpus",
]

log = logging.getLogger("twin.style")

MAX_CHATS = 100
PER_CHAT = 300  # newest messages read per chat
PAGE = 100
CONCURRENCY = 4  # model calls at once


class HistoryReader(Protocol):
    async def private_chat_ids(self, limit: int = 500) -> list[int]: ...
    async def chat_lines(
        self, chat: int, *, before_id: int = 0, limit: int = 100
    ) -> tuple[list[Line], int | None]: ...


async def read_corpus(
    account: HistoryReader,
    repo: Store,
    account_id: int,
    *,
    chats: int = MAX_CHATS,
    per_chat: int = PER_CHAT,
) -> Corpus:
    """The newest `per_chat` messages of the newest `chats` private chats."""
    histories: list[tuple[int, list[Line]]] = []
    # the newest dialogs of any kind, private ones kept: ask for more than `chats`
    for chat_id in (await account.private_chat_ids(limit=max(500, chats)))[:chats]:
        twin_ids = await repo.twin_sent_ids(account_id, chat_id)
        lines: list[Line] = []
        before: int | None = 0
        while before is not None and len(lines) < per_chat:
            page, before = await account.chat_lines(
                chat_id, before_id=before, limit=min(PAGE, per_chat - len(lines))
            )
            lines[:0] = [replace(m, twin=m.out and m.id in twin_ids) for m in page]
        histories.append((chat_id, lines))
    return corpus_of(histories)


@dataclass(frozen=True)
class Prepared:
    held: list[Sample]
    reference: list[str]  # the owner's other messages
    reference_answers: list[tuple[str, ...]]  # the answers not held out
    contacts: list[str]  # the contacts' messages in the same chats
    style: StyleProfile | None  # the profile without the held-out messages among its examples
    answers_found: int
    secret: frozenset[str]  # the held-out messages, normalised: never in a prompt


def prepare(corpus: Corpus, n: int, seed: int, style: StyleProfile | None) -> Prepared:
    held = hold_out(corpus.samples, n, seed)
    secret = frozenset(norm(m) for sample in held for m in sample.answer)
    if style is not None:
        kept = tuple(e for e in style.examples if norm(e.text) not in secret)
        style = replace(style, examples=kept)
    contacts = [text for _, text in corpus.contacts]
    kept_answers = [s.answer for s in corpus.samples if s not in held]
    return Prepared(
        held, corpus.reference(held), kept_answers, contacts, style, len(corpus.samples), secret
    )


class Answering:
    """What each held-out context is answered with: the account's persona and style, the
    owner's corrections (none that is a held-out message)."""

    def __init__(
        self,
        brain: Brain,
        repo: Store,
        account_id: int,
        behaviour: Behaviour,
        prepared: Prepared,
    ) -> None:
        self.brain = brain
        self._repo = repo
        self._account_id = account_id
        self._behaviour = behaviour
        self.prepared = prepared
        self._corrections: list[Any] | None = None

    async def inputs(self, sample: Sample) -> dict[str, Any]:
        return {
            "history": list(sample.context),
            "persona": persona_of(self._behaviour.twin),
            "contact_name": "the contact",
            "style": self.prepared.style,
            "examples": await self._examples(sample),
            "chat_id": sample.chat_id,
        }

    async def _examples(self, sample: Sample) -> list[tuple[str, str]]:
        if self._corrections is None:
            found = await self._repo.corrections(
                self._account_id, limit=CANDIDATES, examples=True
            )
            secret = self.prepared.secret
            self._corrections = [c for c in found if norm(c.owner_text or "") not in secret]
        scope = self._behaviour.twin.corrections_scope
        known = [
            c
            for c in self._corrections
            if scope == "account" or c.peer_id == sample.chat_id
        ]
        question = latest_from_contact(sample.context)
        return pick_examples(known, question) if known and question else []


@dataclass(frozen=True)
class Estimate:
    prompt_tokens: int
    completion_tokens: int  # at most
    cost: Cost
    free: bool  # no confirmation needed: the in-process echo model, or priced at zero


async def estimate(answering: Answering) -> Estimate:
    brain = answering.brain
    held = answering.prepared.held
    prompt = 0
    for sample in held:
        prompt += brain.prompt_size(**await answering.inputs(sample))
    completion = len(held) * brain.max_output_tokens
    cost = brain.prices.cost(brain.llm.model, prompt, completion)
    free = brain.llm.provider == "echo" or (cost.priced and cost.usd == 0)
    return Estimate(prompt, completion, cost, free)


@dataclass(frozen=True)
class Answered:
    answers: list[tuple[str, ...] | None]  # per held-out sample; None: no answer (see `failed`)
    escalated: int  # the twin would have handed these to the owner
    failed: int  # the model call failed
    prompt_tokens: int
    completion_tokens: int
    cost: Cost


async def answer(answering: Answering, bubble_max_chars: int) -> Answered:
    brain = answering.brain
    held = answering.prepared.held
    gate = asyncio.Semaphore(CONCURRENCY)
    results: list[tuple[str, ...] | None] = [None] * len(held)
    escalated = failed = prompt = completion = 0
    cost = Cost.zero()

    async def one(index: int, sample: Sample) -> None:
        nonlocal escalated, failed, prompt, completion, cost
        async with gate:
            try:
                result = await brain.reply(**await answering.inputs(sample))
            except LLMError as exc:
                log.warning("style eval: no answer for one context (%s)", exc)
                failed += 1
                return
        prompt += result.usage.prompt_tokens
        completion += result.usage.completion_tokens
        cost = cost + result.cost
        text = result.reply.text.strip()
        if result.reply.requires_human or not text:
            escalated += 1
            return
        results[index] = tuple(split_bubbles(text, bubble_max_chars))

    await asyncio.gather(*(one(i, s) for i, s in enumerate(held)))
    return Answered(results, escalated, failed, prompt, completion, cost)


class NothingToScore(ValueError):
    """The twin answered none of the held-out conversations: there is nothing to compare."""


def measure(prepared: Prepared, answered: Answered, *, seed: int = 0) -> dict[str, Any]:
    """The figures: per feature the distributions and distances, the tells, the authorship
    model's verdicts and the score (twin.domain.style_score). NothingToScore when the twin
    answered nothing (every call failed or was handed to the owner)."""
    twin = [a for a in answered.answers if a is not None]
    if not twin:
        raise NothingToScore(
            f"the twin answered none of the {len(prepared.held)} conversations "
            f"({answered.escalated} handed to the owner, {answered.failed} failed)"
        )
    real = [
        s.answer for s, a in zip(prepared.held, answered.answers, strict=True) if a is not None
    ]
    reference = [(m,) for m in prepared.reference]
    features: dict[str, Any] = {}
    distances: dict[str, tuple[float, float]] = {}
    for name, (per_message, _) in FEATURES.items():
        # per message: the owner's other messages; per answer: the answers not held out
        owner = distribution(name, reference if per_message else prepared.reference_answers)
        twin_d, held_d = distribution(name, twin), distribution(name, real)
        distance = (js_distance(twin_d, owner), js_distance(held_d, owner))
        if owner:  # nothing of the owner's to compare with: not part of the score
            distances[name] = distance
        features[name] = {
            "twin": round(distance[0], 4),
            "ceiling": round(distance[1], 4),
            "distributions": {"twin": twin_d, "owner": owner, "held_out": held_d},
        }
    owner_tells = tell_rates(reference)
    twin_tells, held_tells = tell_rates(twin), tell_rates(real)
    tells = {
        name: {"twin": twin_tells[name], "owner": owner_tells[name], "held_out": held_tells[name]}
        for name in TELLS
    }
    model = train(prepared.reference, prepared.contacts, seed=seed)
    authorship: dict[str, Any] | None = None
    shares: tuple[float, float] | None = None
    if model is not None and twin:
        shares = (model.share_attributed(twin), model.share_attributed(real))
        authorship = {
            "twin_share": shares[0],
            "owner_share": shares[1],
            "accuracy": round(model.accuracy, 4),
            "owner_messages": model.owner_messages,
            "contact_messages": model.contact_messages,
        }
    score = overall(distances, twin_tells, owner_tells, shares)
    return {
        "score": score.value,
        "components": {
            "style": round(score.style, 4),
            "authorship": None if score.authorship is None else round(score.authorship, 4),
            "tells": round(score.tells, 4),
        },
        "formula": "100 × (0.5 × style + 0.3 × authorship + 0.2 × tells); without authorship "
        "100 × (0.5 × style + 0.2 × tells) / 0.7",
        "samples": len(prepared.held),
        "answered": len(twin),
        "escalated": answered.escalated,
        "failed": answered.failed,
        "answers_found": prepared.answers_found,
        "reference_messages": len(prepared.reference),
        "features": features,
        "tells": tells,
        "authorship": authorship,
        "usage": {
            "prompt_tokens": answered.prompt_tokens,
            "completion_tokens": answered.completion_tokens,
            "cost_usd": round(answered.cost.usd, 6),
            "cost_known": answered.cost.priced,
        },
    }
