"""twin.background.Periodic: a pass now and then again; a failed pass does not end the task."""

from __future__ import annotations

import asyncio
import logging

import pytest

from twin.background import Periodic


async def test_a_failed_pass_is_logged_without_a_traceback_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    second = asyncio.Event()

    async def run() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database is out")
        second.set()

    periodic = Periodic("chore", run, 0, logging.getLogger("tests.periodic"))
    with caplog.at_level(logging.WARNING, logger="tests.periodic"):
        periodic.start()
        periodic.start()  # already running: still one task
        async with asyncio.timeout(5):
            await second.wait()
        await periodic.stop()
    [record] = [r for r in caplog.records if r.name == "tests.periodic"]
    assert "chore" in record.getMessage() and "the database is out" in record.getMessage()
    assert record.exc_info is None
    stopped_at = calls
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == stopped_at  # stopped: no pass after stop() returned
