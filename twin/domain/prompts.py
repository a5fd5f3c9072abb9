"""History → LLM prompt, inside a token budget and hardened against prompt injection.

Layout of a prompt:

1. one **system** message: who the twin is, the security rules, the persona (facts, boundaries,
   the owner's own instructions), the style guidance, the rolling summary of older turns (fenced
   as data) and the output format;
2. optional few-shot pairs from earlier exchanges with the same contact (user → assistant);
3. the conversation itself, oldest kept turn first: consecutive contact turns are merged into one
   **user** message, consecutive owner turns into one **assistant** message.

Everything the contact wrote is only ever inside user messages, between fence lines that carry a
nonce derived from the conversation (a SHA-256 over it, so the contact cannot predict it and
cannot close the fence early), and the system prompt tells the model that fenced text is data,
never instructions. Nothing from the system message is copied into a user or assistant message.

Budgeting (estimates from twin.domain.tokens, which are conservative): the system part and the
newest contact turn (plus any owner turns after it) are placed first; the remaining budget is
filled with older turns, newest first, verbatim. Turns that do not fit are dropped oldest-first
and reported in `Prompt.needs_folding` so the caller can fold them into the summary. If the
system part plus the newest contact turn do not fit, optional parts are trimmed in this order:
examples (last first), style detail (full → brief → none), the summary (cut from its start, then
dropped), persona facts, the owner's extra instructions. If even then the newest contact turn does
not fit, its oldest part is cut. `estimated_tokens` never exceeds `budget_tokens`; a budget too
small for the core rules plus a cut contact turn raises `PromptBudgetError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from twin.domain.conversation import Persona, StyleProfile, Turn
from twin.domain.knowledge import Passage, select_passages
from twin.domain.prompt_system import (
    TIME_FORMAT,
    OutputMode,
    Reference,
    SystemParts,
    clean_name,
    close_fence,
    fence_safe,
    open_fence,
    system_text,
)
from twin.domain.tokens import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    estimate_message_tokens,
    estimate_tokens,
    truncate_to_tokens,
)

__all__ = [
    "OutputMode",
    "Prompt",
    "PromptBudgetError",
    "PromptMessage",
    "PromptRole",
    "Reference",
    "build_prompt",
    "conversation_nonce",
    "fence_safe",
    "prompt_tokens",
]

PromptRole = Literal["system", "user", "assistant"]

_MIN_SUMMARY_TOKENS = 24


class PromptBudgetError(ValueError):
    """The budget cannot hold even the core rules and a cut-down latest contact message."""


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: PromptRole
    content: str


@dataclass(frozen=True)
class Prompt:
    """A budgeted prompt (see the module docstring)."""

    messages: tuple[PromptMessage, ...]
    estimated_tokens: int
    dropped_turns: int  # how many of the oldest history turns are not in the prompt
    needs_folding: tuple[Turn, ...]  # exactly those turns, to be folded into the summary
    kept_turns: int = 0  # how many of the newest history turns are in the prompt
    truncated: bool = False  # the newest contact turn had to be cut
    trimmed: tuple[str, ...] = ()  # optional parts that were trimmed to fit
    nonce: str = ""
    passages: tuple[Passage, ...] = ()  # the knowledge passages in the prompt, labelled

    @property
    def system(self) -> str:
        return self.messages[0].content if self.messages else ""


def prompt_tokens(messages: Sequence[PromptMessage]) -> int:
    """Estimated input tokens of a message list (messages + reply priming)."""
    return sum(estimate_message_tokens(m.content) for m in messages) + REPLY_PRIMING


def conversation_nonce(
    history: Sequence[Turn], summary: str | None, extra: Sequence[str] = ()
) -> str:
    """12 hex digits that depend on everything the contact could have written."""
    digest = hashlib.sha256()
    for turn in history:
        digest.update(turn.role.encode())
        digest.update(b"\x00")
        digest.update(turn.text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x01")
    digest.update((summary or "").encode("utf-8", "surrogatepass"))
    for item in extra:
        digest.update(b"\x02")
        digest.update(item.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:12]


# -- rendering -----------------------------------------------------------------------------------


def _contact_block(turn: Turn) -> str:
    label = turn.at.strftime(TIME_FORMAT)
    if turn.kind == "voice":
        label += " · voice message, transcribed"
    return f"[{label}]\n{fence_safe(turn.text)}"


def _fenced(nonce: str, body: str, example: bool = False) -> str:
    return f"{open_fence(nonce, example)}\n{body}\n{close_fence(nonce)}"


_CONTACT_SEP = "\n\n"
_OWNER_SEP = "\n"


@dataclass
class _Group:
    """A run of consecutive same-role turns being assembled newest-first."""

    role: Literal["contact", "owner"]
    blocks: list[str]  # newest first
    bound: int  # upper bound of the message's token estimate

    def content(self, nonce: str) -> str:
        ordered = list(reversed(self.blocks))
        if self.role == "contact":
            return _fenced(nonce, _CONTACT_SEP.join(ordered))
        return _OWNER_SEP.join(ordered)

    def message(self, nonce: str) -> PromptMessage:
        role: PromptRole = "user" if self.role == "contact" else "assistant"
        return PromptMessage(role, self.content(nonce))


def _block(turn: Turn) -> str:
    return _contact_block(turn) if turn.role == "contact" else turn.text


def _block_cost(turn: Turn) -> int:
    sep = _CONTACT_SEP if turn.role == "contact" else _OWNER_SEP
    return estimate_tokens(_block(turn) + sep)


def _group_base_cost(role: str, nonce: str) -> int:
    """Upper bound of a group message's cost without its blocks (fences + overhead)."""
    if role == "contact":
        fences = estimate_tokens(open_fence(nonce) + "\n") + estimate_tokens(
            "\n" + close_fence(nonce)
        )
        return MESSAGE_OVERHEAD + fences
    return MESSAGE_OVERHEAD


_MIN_CUT_BODY = 64  # tokens of the newest contact turn worth keeping before trimming the persona


def build_prompt(
    persona: Persona,
    style: StyleProfile | None,
    history: Sequence[Turn],
    summary: str | None,
    examples: Sequence[tuple[str, str]],
    budget_tokens: int,
    contact_name: str,
    *,
    output: OutputMode = "json",
    now: datetime | None = None,
    reference: Reference | None = None,
    knowledge_tokens: int = 0,
) -> Prompt:
    """Assemble the prompt for the owner's next message (see the module docstring).

    `history` is the chat oldest-first *without* the turns already folded into `summary`.
    `style` should already be narrowed to this chat (`StyleProfile.for_chat`). `examples` are
    (contact message, owner reply) pairs from earlier exchanges with the same contact, most
    relevant first. `reference`: the knowledge base's passages (best first; those fitting
    `knowledge_tokens` are kept, labelled K1…) and the contact's remembered facts.
    """
    history = list(history)
    summary = (summary or "").strip() or None
    examples = [(c, o) for c, o in examples if c.strip() and o.strip()]
    if reference is not None:
        chosen_passages = tuple(select_passages(reference.passages, knowledge_tokens))
        reference = Reference(
            chosen_passages, reference.memory, reference.gaps, reference.has_knowledge
        )
    passages = reference.passages if reference is not None else ()
    memory = reference.memory if reference is not None else ()
    extra = [c for c, _ in examples] + [p.text for p in passages] + list(memory)
    nonce = conversation_nonce(history, summary, extra)
    contact = clean_name(contact_name, "the contact")

    def example_messages(k: int) -> list[PromptMessage]:
        out: list[PromptMessage] = []
        for contact_text, owner_text in examples[:k]:
            out.append(PromptMessage("user", _fenced(nonce, fence_safe(contact_text), True)))
            out.append(PromptMessage("assistant", owner_text))
        return out

    def fixed_cost(parts: SystemParts) -> tuple[int, str]:
        """Tokens of the system message + examples + reply priming, and the system text."""
        system = system_text(
            persona, style, contact, nonce, parts, output, now, bool(examples), reference
        )
        cost = estimate_message_tokens(system) + REPLY_PRIMING
        cost += sum(estimate_message_tokens(m.content) for m in example_messages(parts.examples))
        return cost, system

    # the mandatory tail: the newest contact turn and anything after it
    last_contact = next(
        (i for i in range(len(history) - 1, -1, -1) if history[i].role == "contact"), None
    )
    tail_start = last_contact if last_contact is not None else max(len(history) - 1, 0)
    tail = history[tail_start:]
    groups = _groups_newest_first(tail, nonce)
    tail_cost = sum(g.bound for g in groups)

    chosen: tuple[int, str, SystemParts] | None = None
    trimmed: list[str] = []
    truncated = False
    for label, parts, may_cut in _richest_first(len(examples), summary, len(passages)):
        if label and label not in trimmed:
            trimmed.append(label)
        if parts is _CUT_SUMMARY:
            fitted = _fit_summary(summary or "", fixed_cost, budget_tokens - tail_cost)
            if fitted is not None:
                chosen = fitted
                break
            continue
        cost, text = fixed_cost(parts)
        if cost + tail_cost <= budget_tokens:
            chosen = (cost, text, parts)
            break
        if not may_cut:
            continue
        # the brief's trimming list is exhausted: cut the newest turn rather than lose more of
        # the persona, unless too little of it would remain
        last = label == "instructions"
        wanted = min(_MIN_CUT_BODY, estimate_tokens(fence_safe(tail[0].text))) if tail else 0
        cut = _cut_tail(tail, budget_tokens - cost, nonce, minimum=1 if last else wanted)
        if cut is not None:
            groups, truncated = cut, True
            chosen = (cost, text, parts)
            break
        if last:
            raise PromptBudgetError(
                f"a budget of {budget_tokens} tokens cannot hold the core rules and the latest "
                "contact message"
            )
    assert chosen is not None
    fixed, system, parts = chosen

    # fill the rest with older turns, newest first
    remaining = budget_tokens - fixed - sum(g.bound for g in groups)
    first_kept = tail_start if tail else 0
    if not truncated:
        for index in range(tail_start - 1, -1, -1):
            turn = history[index]
            same = bool(groups) and groups[-1].role == turn.role
            extra = _block_cost(turn) + (0 if same else _group_base_cost(turn.role, nonce))
            if extra > remaining:
                break
            if same:
                groups[-1].blocks.append(_block(turn))
                groups[-1].bound += extra
            else:
                groups.append(_Group(turn.role, [_block(turn)], extra))
            remaining -= extra
            first_kept = index

    messages = [PromptMessage("system", system), *example_messages(parts.examples)]
    messages += [g.message(nonce) for g in reversed(groups)]
    total = prompt_tokens(messages)
    if total > budget_tokens:  # pragma: no cover - guaranteed by the subadditive bounds
        raise AssertionError(f"prompt estimate {total} exceeds budget {budget_tokens}")
    return Prompt(
        messages=tuple(messages),
        estimated_tokens=total,
        dropped_turns=first_kept,
        needs_folding=tuple(history[:first_kept]),
        kept_turns=len(history) - first_kept,
        truncated=truncated,
        trimmed=tuple(trimmed),
        nonce=nonce,
        passages=passages[: parts.knowledge],
    )


_CUT_SUMMARY = SystemParts(0, "none", "<cut>", True, True, 0, True)


def _richest_first(
    n_examples: int, summary: str | None, n_passages: int = 0
) -> list[tuple[str, SystemParts, bool]]:
    """System configurations from richest to leanest: (what it trims, parts, may cut the tail).
    Trimmed in this order: examples, style, knowledge passages (last first), the summary, the
    contact's memory with the persona's facts, the owner's instructions."""
    k = n_passages
    seq: list[tuple[str, SystemParts, bool]] = [
        ("", SystemParts(n_examples, "full", summary, True, True, k, True), False)
    ]
    seq += [
        ("examples", SystemParts(e, "full", summary, True, True, k, True), False)
        for e in range(n_examples - 1, -1, -1)
    ]
    seq.append(("style", SystemParts(0, "brief", summary, True, True, k, True), False))
    seq.append(
        ("style", SystemParts(0, "none", summary, True, True, k, True), not summary and not k)
    )
    seq += [
        ("knowledge", SystemParts(0, "none", summary, True, True, n, True), not summary and not n)
        for n in range(k - 1, -1, -1)
    ]
    if summary:
        seq.append(("summary", _CUT_SUMMARY, False))
        seq.append(("summary", SystemParts(0, "none", None, True, True, 0, True), True))
    seq.append(("facts", SystemParts(0, "none", None, False, True), True))
    seq.append(("instructions", SystemParts(0, "none", None, False, False), True))
    return seq


def _fit_summary(
    summary: str,
    fixed_cost: Callable[[SystemParts], tuple[int, str]],
    room: int,
) -> tuple[int, str, SystemParts] | None:
    """Keep the most recent part of the summary that fits in `room` next to the rest."""
    without, _ = fixed_cost(SystemParts(0, "none", None, True, True, 0, True))
    allowance = room - without - 40  # the summary's header and fences
    for _ in range(4):
        if allowance < _MIN_SUMMARY_TOKENS:
            return None
        parts = SystemParts(
            0, "none", truncate_to_tokens(summary, allowance, keep="end"), True, True, 0, True
        )
        cost, text = fixed_cost(parts)
        if cost <= room:
            return cost, text, parts
        allowance -= cost - room
    return None


def _groups_newest_first(turns: Sequence[Turn], nonce: str) -> list[_Group]:
    groups: list[_Group] = []
    for turn in reversed(turns):
        if groups and groups[-1].role == turn.role:
            groups[-1].blocks.append(_block(turn))
            groups[-1].bound += _block_cost(turn)
        else:
            bound = _group_base_cost(turn.role, nonce) + _block_cost(turn)
            groups.append(_Group(turn.role, [_block(turn)], bound))
    return groups


def _cut_tail(tail: Sequence[Turn], room: int, nonce: str, *, minimum: int) -> list[_Group] | None:
    """Fit the mandatory tail into `room` tokens by cutting its oldest text; None if the
    newest contact turn would keep fewer than `minimum` tokens."""
    if not tail:
        return [] if room >= 0 else None
    contact_turn, after = tail[0], list(tail[1:])
    if contact_turn.role == "owner":  # the history has no contact turn at all
        text = _OWNER_SEP.join(t.text for t in tail)
        body = truncate_to_tokens(text, room - MESSAGE_OVERHEAD, keep="end")
        if (not body and text) or room < MESSAGE_OVERHEAD:
            return None
        return [_Group("owner", [body], MESSAGE_OVERHEAD + estimate_tokens(body))]
    groups: list[_Group] = []
    if after:  # owner turns after the newest contact turn (rare): at most a third of the room
        owner_text = truncate_to_tokens(
            _OWNER_SEP.join(t.text for t in after), max(room // 3 - MESSAGE_OVERHEAD, 0), keep="end"
        )
        if owner_text:
            groups.append(
                _Group("owner", [owner_text], MESSAGE_OVERHEAD + estimate_tokens(owner_text))
            )
    label = _contact_block(Turn(contact_turn.role, "", contact_turn.at, contact_turn.kind))
    base = _group_base_cost("contact", nonce) + estimate_tokens(label)
    body_room = room - sum(g.bound for g in groups) - base
    if body_room < minimum:
        return None
    text = fence_safe(contact_turn.text)
    body = truncate_to_tokens(text, body_room, keep="end")
    if not body and text:
        return None
    groups.append(_Group("contact", [label + body], base + estimate_tokens(body)))
    return groups
