"""What `twin style eval` tests the twin on: the owner's real answers, each with the conversation
before it, some held out to be answered by the twin, the rest kept as what the owner's style is.

A chat's history is a list of `Line`s (oldest first). An *answer* is a run of the owner's own
consecutive messages (with text) that directly follows a message of the contact: what the owner
wrote back, in as many messages as they used. The twin's own earlier replies (`Line.twin`) are
never an answer and never count as the owner's writing, but they are part of a later context
(the contact saw them as the owner's).

`hold_out` picks the answers to test on — at most half of them, so the owner's other answers
stay a reference — deterministic for a seed, spread over the chats (one per chat in turn, chats
in a shuffled order) so one chatty contact does not make the whole test.
Everything else the owner wrote (`Corpus.reference`) is the owner's style the answers are
compared with, and what the authorship model learns the owner from; the contacts' messages in
the same chats are what it learns "not the owner" from.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from twin.domain.conversation import ChatId, Turn

__all__ = ["MIN_ANSWERS", "Corpus", "Line", "Sample", "corpus_of", "hold_out"]

CONTEXT_TURNS = 12  # messages of conversation given before each held-out answer
MIN_ANSWERS = 10  # found in the history, to test on any (half of them at most are held out)


@dataclass(frozen=True, slots=True)
class Line:
    """One message of a private chat's history: who wrote it (`out`: the account), when, its
    text ("" for media without a caption), and whether the twin sent it."""

    id: int
    at: datetime
    out: bool
    text: str
    twin: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    """One of the owner's real answers and the conversation before it (the newest turn is the
    contact's)."""

    chat_id: ChatId
    context: tuple[Turn, ...]
    answer: tuple[str, ...]  # the owner's messages, in order
    ids: tuple[int, ...]  # their message ids (what the reference leaves out when held out)


@dataclass
class Corpus:
    """Every answer found, and every message of the owner's and of the contacts'."""

    samples: list[Sample] = field(default_factory=list)
    owner: list[tuple[ChatId, int, str]] = field(default_factory=list)  # chat, id, text
    contacts: list[tuple[ChatId, str]] = field(default_factory=list)

    def reference(self, held: Iterable[Sample]) -> list[str]:
        """The owner's messages that are not one of the held-out answers."""
        out = {(s.chat_id, i) for s in held for i in s.ids}
        return [text for chat, i, text in self.owner if (chat, i) not in out]


def _turn(line: Line) -> Turn:
    return Turn("owner" if line.out else "contact", line.text, line.at)


def corpus_of(
    chats: Iterable[tuple[ChatId, Sequence[Line]]], *, context_turns: int = CONTEXT_TURNS
) -> Corpus:
    """The answers and messages of these chats (each history oldest first)."""
    corpus = Corpus()
    for chat_id, lines in chats:
        texted = [line for line in lines if line.text.strip()]
        i = 0
        while i < len(texted):
            line = texted[i]
            if not line.out:
                corpus.contacts.append((chat_id, line.text.strip()))
                i += 1
                continue
            if line.twin:
                i += 1
                continue
            run = [line]
            while i + len(run) < len(texted) and (nxt := texted[i + len(run)]).out:
                if nxt.twin:
                    break
                run.append(nxt)
            corpus.owner.extend((chat_id, m.id, m.text.strip()) for m in run)
            if i > 0 and not texted[i - 1].out:  # the owner answered the contact
                context = tuple(_turn(m) for m in texted[max(0, i - context_turns) : i])
                answer = tuple(m.text.strip() for m in run)
                corpus.samples.append(Sample(chat_id, context, answer, tuple(m.id for m in run)))
            i += len(run)
    return corpus


def hold_out(samples: Sequence[Sample], n: int, seed: int) -> list[Sample]:
    """`n` of the samples (at most half of them: the rest stay the owner's reference), one chat
    at a time in a shuffled order of chats, each chat's own answers in a shuffled order; the
    same for the same seed."""
    n = min(n, len(samples) // 2)
    rng = random.Random(seed)
    by_chat: dict[ChatId, list[Sample]] = {}
    for sample in samples:
        by_chat.setdefault(sample.chat_id, []).append(sample)
    queues = [by_chat[chat] for chat in sorted(by_chat, key=str)]
    rng.shuffle(queues)
    for queue in queues:
        rng.shuffle(queue)
    picked: list[Sample] = []
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked
