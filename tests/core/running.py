"""`twin run --port 0` as a subprocess: wait for the port it announces, then for /health."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

_ANNOUNCED = re.compile(r"Running on http://[^\s:]+:(\d+)")


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment minus TWIN_* and PYTHONPATH (a subprocess imports what it should)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


@dataclass
class Run:
    exit_code: int
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


async def run_until_healthy(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float = 60.0
) -> Run:
    """Start a `twin run --port 0` command, wait until GET /health on the port it announces
    answers 200, stop it with SIGTERM and return its exit code and output lines."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            lines.append(text)
            found = _ANNOUNCED.search(text)
            if found and not port.done():
                port.set_result(int(found.group(1)))
        if not port.done():
            port.set_exception(AssertionError("exited without announcing a port"))

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(timeout):
            try:
                base = f"http://127.0.0.1:{await port}"
            except AssertionError:
                raise AssertionError("\n".join(lines)) from None
            async with aiohttp.ClientSession() as http:
                while True:  # the site is up once announced; /health may still say "starting"
                    async with http.get(base + "/health") as response:
                        if response.status == 200:
                            break
                    await asyncio.sleep(0.05)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await reader
            code = await process.wait()
    return Run(code, lines)
