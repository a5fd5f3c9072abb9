"""A built-in model that needs no provider: it answers by echoing what the contact last wrote.

For `twin demo` without an LLM key, and for trying the pipeline end to end offline
(`[llm] provider = "echo"`). Deterministic, no network, no cost. It implements the `LLM` port
like any provider, so everything around it (prompt, budget, structured flags, bubbles, typing,
read receipts) runs exactly as with a real model.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from twin.brain.port import Completion, CompletionStream
from twin.domain.prompts import PromptMessage
from twin.domain.tokens import estimate_tokens

MODEL = "echo"
_FENCE = re.compile(r"^⟦/?contact [^⟧]*⟧$")
_LABEL = re.compile(r"^\[[^\]]*\]$")  # a turn's "[Mon 10:04]" line


def last_words(messages: Sequence[PromptMessage]) -> str:
    """What the contact wrote last: the newest user message without fences and time labels."""
    for message in reversed(messages):
        if message.role != "user":
            continue
        blocks = message.content.split("\n\n")
        lines = [
            line
            for line in blocks[-1].splitlines()
            if not _FENCE.match(line.strip()) and not _LABEL.match(line.strip())
        ]
        text = " ".join(" ".join(lines).split())
        if text:
            return text
    return ""


class EchoLLM:
    """`provider = "echo"`: replies "You said: …" (summaries: the last words, shortened)."""

    provider = "echo"

    def __init__(self, model: str = MODEL) -> None:
        self.model = model or MODEL

    def _answer(self, messages: Sequence[PromptMessage], structured: bool) -> Completion:
        words = last_words(messages)
        text = f"You said: {words}" if words else "Hello!"
        if structured:
            text = json.dumps(
                {
                    "text": text,
                    "requires_human": False,
                    "intent": "unknown",
                    "confidence": 1.0,
                    "end_conversation": False,
                },
                ensure_ascii=False,
            )
        prompt = sum(estimate_tokens(m.content) for m in messages)
        return Completion(
            text=text,
            prompt_tokens=prompt,
            completion_tokens=estimate_tokens(text),
            model=self.model,
            provider=self.provider,
            finish_reason="stop",
            usage_estimated=True,
        )

    async def complete(
        self,
        messages: Sequence[PromptMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        return self._answer(messages, structured=json_schema is not None)

    def stream(
        self, messages: Sequence[PromptMessage], *, max_tokens: int, temperature: float
    ) -> CompletionStream:
        async def pieces() -> AsyncIterator[str | Completion]:
            completion = self._answer(messages, structured=False)
            for word in completion.text.split(" "):
                yield word + " "
            yield completion

        return CompletionStream(pieces())

    async def aclose(self) -> None:
        return None
