"""`twin demo` (issue 12.9): the real daemon against the packaged sandbox server, driven by a
contact's Telegram client, as a subprocess in an empty directory (as a new user runs it)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


async def _twin_demo(cwd: Path, *args: str, env: dict[str, str] | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "twin",
        "demo",
        *args,
        cwd=cwd,
        env=environment,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return process


async def _finish(process, stdin: bytes = b"") -> tuple[int | None, str, str]:
    out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    return process.returncode, out.decode(), err.decode()


async def test_scripted_contact_is_answered_end_to_end(tmp_path: Path) -> None:
    script = tmp_path / "talk.txt"
    script.write_text("hello twin\n\nare you free on Friday?\n", encoding="utf-8")
    code, out, err = await _finish(await _twin_demo(tmp_path, "--script", str(script)))
    assert code == 0, out + err
    lines = out.splitlines()
    assert "Model: the built-in echo model (no LLM is configured: it repeats you)." in lines
    # what the contact's own client saw, in order, for each line (the empty one is skipped)
    for said in ("hello twin", "are you free on Friday?"):
        start = lines.index(f"you: {said}")
        seen = lines[start : lines.index(f"twin: You said: {said}") + 1]
        assert "  ✓✓ twin read your message" in seen
        assert "  … twin is typing" in seen
    assert lines[-1] == "Every one of the 2 lines got a reply."
    assert "Traceback" not in out + err
    assert os.listdir(tmp_path) == ["talk.txt"]  # nothing stored here


async def test_a_reply_that_does_not_come_in_time_fails_the_script(tmp_path: Path) -> None:
    code, out, err = await _finish(await _twin_demo(tmp_path, "--script", "--timeout", "0.01"))
    assert code == 1
    assert "error: no reply to line 1 ('Hi! Are you around?') within 0.01 s" in err
    assert "Traceback" not in out + err


async def test_interactive_chat_until_end_of_input(tmp_path: Path) -> None:
    process = await _twin_demo(tmp_path)
    assert process.stdin is not None and process.stdout is not None
    # Wait for the prompt, then type one message and wait for the twin's answer before leaving.
    while b"Type a message" not in await asyncio.wait_for(process.stdout.readline(), 60):
        pass
    process.stdin.write(b"ping from the terminal\n")
    await process.stdin.drain()
    while b"twin: You said: ping from the terminal" not in await asyncio.wait_for(
        process.stdout.readline(), 60
    ):
        pass
    process.stdin.write(b"/quit\n")
    await process.stdin.drain()
    code, out, err = await _finish(process)
    assert code == 0, err
    assert "Traceback" not in out + err


async def test_a_configured_llm_is_used_instead_of_the_echo_model(tmp_path: Path, fake_openai):
    config = tmp_path / "config.toml"
    config.write_text(
        "[llm]\n"
        f'provider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "{fake_openai.base_url}/v1"\n',
        encoding="utf-8",
    )
    process = await _twin_demo(
        tmp_path, "--config", str(config), "--script", env={"TWIN_LLM__API_KEY": "sk-demo"}
    )
    code, out, err = await _finish(process)
    assert code == 0, out + err
    assert "Model: openai gpt-4o-mini (from your configuration)." in out
    assert fake_openai.requests  # the replies came from the configured provider
