"""`twin style build` engine: batches in, state saved after each, resumable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from twin.brain.style_build import build_style, resume_cursor
from twin.domain.style import OwnerMessage, compute_style

T0 = datetime(2024, 1, 1)
MESSAGES = [
    OwnerMessage(text, chat, T0 + timedelta(minutes=i))
    for i, (chat, text) in enumerate(
        [(1, "привет! ты где?"), (2, "Добрый день. Вы сможете?"), (1, "ок)")] * 10
        + [(3, "hi! see you 👍"), (3, "thanks")] * 5
    )
]


class Interrupted(Exception):
    pass


async def pages(after: int | None, *, size: int = 7, stop_at: int | None = None):
    start = 0 if after is None else after + 1
    for first in range(start, len(MESSAGES), size):
        if stop_at is not None and first >= stop_at:
            raise Interrupted
        chunk = MESSAGES[first : first + size]
        yield chunk, first + len(chunk) - 1  # cursor = index of the last message read


async def test_interrupted_build_resumes_to_the_same_profile() -> None:
    stored: dict[str, Any] = {}

    async def save(state: dict[str, Any], cursor: Any) -> None:
        stored["state"] = json.loads(json.dumps(state, ensure_ascii=False))  # like a JSON column
        stored["cursor"] = cursor

    with pytest.raises(Interrupted):
        await build_style(pages(None, stop_at=21), save=save)
    assert stored["cursor"] == 20
    assert resume_cursor(stored["state"]) == 20

    acc = await build_style(pages(resume_cursor(stored["state"])), save=save, state=stored["state"])
    assert acc.profile() == compute_style(MESSAGES)
    assert stored["cursor"] == len(MESSAGES) - 1


async def test_first_run_without_state() -> None:
    saves: list[Any] = []

    async def save(state: dict[str, Any], cursor: Any) -> None:
        saves.append(cursor)

    acc = await build_style(pages(resume_cursor(None)), save=save)
    assert acc.profile().message_count == len(MESSAGES)
    assert len(MESSAGES) == 40
    assert saves == [6, 13, 20, 27, 34, 39]


async def test_nothing_new_keeps_the_profile() -> None:
    async def empty() -> AsyncIterator[tuple[list[OwnerMessage], Any]]:
        return
        yield  # pragma: no cover

    async def save(state: dict[str, Any], cursor: Any) -> None:  # pragma: no cover
        raise AssertionError("nothing to save")

    acc = await build_style(empty(), save=save)
    assert acc.profile().message_count == 0
