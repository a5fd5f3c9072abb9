"""Schemathesis over the running daemon's own /openapi.json, with the owner logged in to the
sandbox and a contact's chat stored: every operation, a bounded number of examples each, in
deterministic mode. It fails on any 5xx, any answer outside the documented responses or the one
error shape, any schema-violating request accepted, and any schema-valid request refused by the
validator (see tests/e2e/schemathesis_hooks.py for the checks of our own).

The CLI runs as a subprocess (its documented interface) against the app served on loopback by
this test's event loop, which keeps serving while the subprocess runs.

Left out or bounded: GET /events is an endless SSE stream (tests/api/test_events_sse.py covers
it); POST /auth/logout ends the login every other operation needs, so it runs alone, last.
The API's own rate limits are raised far above what the run sends (their tests are in
tests/api/test_rate_limits.py and tests/e2e/test_login_limits.py), so that every request is
validated rather than refused with 429.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTH, contact_client, login, people, wait_for_event

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HOOKS = "tests.e2e.schemathesis_hooks"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "valid_input_accepted",  # positive_data_acceptance, exact (see the hooks module)
    "error_shape",
)
MAX_EXAMPLES = 25
RUN_TIMEOUT = 300  # seconds; a run takes ~20-35 s on 2 busy cores
GENEROUS = {"rate_limit_requests": 1_000_000, "login_attempts": 1_000_000}


# Half of the generated chat ids are the contact's stored chat, so that the operations on a
# chat get past "404 unknown chat" too (history, pause/resume, per-chat settings, sending).
CONFIG = """
[dictionaries.chats]
values = [{chat}]

[parameters]
"query.chat" = {{ dictionary = "chats", probability = 0.5 }}
"path.chat_id" = {{ dictionary = "chats", probability = 0.5 }}
"body.chat" = {{ dictionary = "chats", probability = 0.5 }}
"""


async def schemathesis_run(
    base_url: str, workdir: Path, chat: int, *options: str
) -> tuple[int, str]:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG.format(chat=chat), encoding="utf-8")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: {AUTH['Authorization']}",
        "--checks",
        ",".join(CHECKS),
        "--generation-deterministic",  # the same cases on every run (no seed, no database)
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
        "--exclude-path",
        "/events",
        *options,
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"schemathesis did not finish within {RUN_TIMEOUT} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_the_api_keeps_its_openapi_document(sandbox, sandbox_clients, make_daemon, tmp_path):
    owner, contact = people(sandbox)
    daemon = await make_daemon(api=GENEROUS, llm={"provider": "echo"})  # /api/chat answers
    await login(daemon, sandbox)
    carl = await contact_client(sandbox_clients)
    await carl.send_message(owner.id, "hello Olga")
    await wait_for_event(daemon, "message.received")
    assert daemon.client is not None
    base_url = str(daemon.client.make_url("")).rstrip("/")

    code, out = await schemathesis_run(
        base_url,
        tmp_path,
        contact.id,
        "--exclude-operation-id",
        "auth_logout",
        "--max-examples",
        str(MAX_EXAMPLES),
    )
    assert code == 0, out

    logout = ("--include-operation-id", "auth_logout", "--max-examples", "5")
    code, out = await schemathesis_run(base_url, tmp_path, contact.id, *logout)
    assert code == 0, out
    status, body = await daemon.call("GET", "/auth/status")
    assert status == 200 and body["authorized"] is False  # the logout really ran
