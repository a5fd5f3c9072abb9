"""Learning from the owner's corrections (issue 18 §2): what the owner made of the twin's drafts
(sent unchanged, edited, skipped — recorded by twin.services.drafts in the decision's
transaction) comes back as the prompt's first few-shot examples.

For each answer the newest corrections of the account that carry the owner's text are ranked by
lexical similarity of their context (what the contact wrote then) to the contact's latest
message: Jaccard overlap of the knowledge base's analyzed terms (Snowball stems of Russian and
English, function words dropped), so "сколько стоит цепь" meets "цена замены цепи". The best
`CORRECTION_EXAMPLES` (ties: the newer first) become (contact, owner) example pairs; the prompt
builder keeps them within the budget (examples are the first thing it trims).

Whose corrections: `[twin] corrections_scope = "chat"` (the default) uses only the chat's own,
so what one contact said never reaches another contact's prompt (the style's examples are
narrowed to the chat the same way); `"account"` learns across the account's chats, for a
business whose answers are the same for everyone. The account's list is cached for
`CACHE_SECONDS` and dropped on every decision or correction in this process (a read that was
in flight meanwhile is not cached)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from twin.db.records_drafts import CorrectionRecord
from twin.knowledge.analyze import query_terms
from twin.ports import Store
from twin.services.events import EventLog, StagedEvent

CORRECTION_EXAMPLES = 3
CANDIDATES = 200  # the newest corrections of an account considered
CACHE_SECONDS = 60.0


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def pick_examples(
    corrections: Sequence[CorrectionRecord], question: str, k: int = CORRECTION_EXAMPLES
) -> list[tuple[str, str]]:
    """The (context, owner's text) pairs most like `question`, best first (`corrections`
    newest first; only those with some overlap)."""
    asked = frozenset(query_terms(question))
    scored = []
    for order, correction in enumerate(corrections):
        if correction.owner_text is None:
            continue
        score = similarity(asked, frozenset(query_terms(correction.context)))
        if score > 0:
            scored.append((-score, order, correction))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [(c.context, c.owner_text or "") for _, _, c in scored[:k]]


class Corrections:
    def __init__(self, store: Store, events: EventLog) -> None:
        self._store = store
        self._cache: dict[int, tuple[float, list[CorrectionRecord]]] = {}
        self._generation: dict[int, int] = {}  # per account: bumped when its list changed
        events.subscribe(self._on_event)

    def _on_event(self, event: StagedEvent) -> None:
        learned = ("draft.sent", "draft.skipped", "correction.recorded")
        if event.type in learned and event.account_id is not None:
            self.forget(event.account_id)

    def forget(self, account_id: int) -> None:
        self._cache.pop(account_id, None)
        self._generation[account_id] = self._generation.get(account_id, 0) + 1

    async def examples(
        self, account_id: int, chat_id: int, question: str, *, scope: str = "chat"
    ) -> list[tuple[str, str]]:
        """The few-shot examples for an answer to `question` in this chat."""
        cached = self._cache.get(account_id)
        if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
            generation = self._generation.get(account_id, 0)
            found = await self._store.corrections(account_id, limit=CANDIDATES, examples=True)
            cached = (time.monotonic(), found)
            if self._generation.get(account_id, 0) == generation:  # not changed meanwhile
                self._cache[account_id] = cached
        known = cached[1] if scope == "account" else [c for c in cached[1] if c.chat_id == chat_id]
        return pick_examples(known, question) if known else []
