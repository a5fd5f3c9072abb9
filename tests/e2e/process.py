"""The daemon as a real `twin run` subprocess: config file + env secrets, HTTP on a free port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w

TOKEN = "process-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DaemonProcess:
    def __init__(self, workdir: Path, config: dict[str, Any], secrets: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        config = {**config, "api": {**config.get("api", {}), "port": self.port}}
        (workdir / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
        self.env.update(secrets)
        self.env["TWIN_API__TOKENS"] = TOKEN
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "daemon.log"
        self.base = f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited on below
                [sys.executable, "-m", "twin", "run", "--config", "config.toml"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await self.until(self._healthy, timeout, "the daemon did not become healthy")

    async def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
        try:
            async with aiohttp.ClientSession() as http, http.get(self.base + "/health") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, waited for without blocking the loop (the sandbox in this process answers
        the sends the daemon finishes while it stops)."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(proc.wait, timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base + path, headers=headers, **kwargs) as response,
        ):
            return response.status, await response.json()

    @staticmethod
    async def until(
        predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.05
    ) -> Any:
        """Poll an observable condition (another process's state) until true, or fail."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(message)
            await asyncio.sleep(interval)
