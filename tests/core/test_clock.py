"""SystemClock.sleep: woken early, timed out, and — the Python 3.11 trap of `asyncio.wait_for`
— cancelled as its wake event is set: the cancel must not be lost."""

from __future__ import annotations

import asyncio

import pytest

from twin.clock import SystemClock


async def test_sleep_returns_false_when_woken_and_true_when_the_time_is_up() -> None:
    clock, wake = SystemClock(), asyncio.Event()
    wake.set()
    assert await clock.sleep(60, wake) is False
    assert await clock.sleep(0.01, asyncio.Event()) is True
    assert await clock.sleep(0, wake) is False and await clock.sleep(0) is True


@pytest.mark.parametrize("ticks", [0, 1, 2])
async def test_a_loop_cancelled_as_it_is_woken_ends(ticks: int) -> None:
    """A background loop sleeping on its wake event is woken (a remote event) and cancelled
    (the app stopping) in the same moment: it ends. With `wait_for` on 3.11 the cancel was
    dropped and the loop slept again — stop() then waited for ever (CI's hung teardown)."""
    clock, wake = SystemClock(), asyncio.Event()
    sleeping = asyncio.Event()

    async def loop() -> None:
        while True:
            sleeping.set()
            await clock.sleep(60, wake)
            wake.clear()

    task = asyncio.create_task(loop())
    await asyncio.wait_for(sleeping.wait(), 15)
    await asyncio.sleep(0)  # inside the sleep now
    wake.set()
    for _ in range(ticks):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=15)
    assert done and task.cancelled()
