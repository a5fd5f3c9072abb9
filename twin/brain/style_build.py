"""Resumable building of the owner's style profile (the engine behind `twin style build`).

Storage-agnostic: the caller supplies the owner's messages in batches, each with the cursor to
resume *after* it (e.g. the last message id read), and a `save(state, cursor)` coroutine that
persists the accumulator state. After an interruption, call again with the last saved state and
let the batch source start after `resume_cursor(state)`; the result is the same as one
uninterrupted run.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from typing import Any

from twin.domain.style import OwnerMessage, StyleAccumulator

__all__ = ["build_style", "resume_cursor"]

Save = Callable[[dict[str, Any], Any], Awaitable[Any]]


def resume_cursor(state: Mapping[str, Any] | None) -> Any:
    """Where a previous run stopped (None: start from the beginning)."""
    return StyleAccumulator.from_dict(dict(state)).cursor if state else None


async def build_style(
    batches: AsyncIterable[tuple[Sequence[OwnerMessage], Any]],
    *,
    save: Save,
    state: Mapping[str, Any] | None = None,
) -> StyleAccumulator:
    """Add every batch to the accumulator restored from `state`, saving after each batch.

    `save(state_dict, cursor)` receives `StyleAccumulator.to_dict()` (cursor included) and the
    batch's cursor. Returns the accumulator; `.profile()` gives the StyleProfile.
    """
    acc = StyleAccumulator.from_dict(dict(state)) if state else StyleAccumulator()
    async for messages, cursor in batches:
        acc.add(messages)
        acc.cursor = cursor
        await save(acc.to_dict(), cursor)
    return acc
