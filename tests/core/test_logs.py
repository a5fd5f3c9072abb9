"""Secrets, phone codes, passwords and session data never reach the logs, whatever the path."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from twin.config import load_settings
from twin.logs import Redactor, request_id_var, setup_logging

API_TOKEN = "tok-9f8e7d6c5b4a"
API_HASH = "0123456789abcdef0123456789abcdef"
LLM_KEY = "sk-live-ABCDEF123456"
PASSWORD = "correct horse battery"
LOGIN_CODE = "73519"
SESSION = "1" + "BQAAAHZpbnR3aW4tc2Vzc2lvbi1kYXRh" * 12  # the shape of a StringSession
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TWIN_API__TOKENS", API_TOKEN)
    monkeypatch.setenv("TWIN_TELEGRAM__API_HASH", API_HASH)
    monkeypatch.setenv("TWIN_LLM__API_KEY", LLM_KEY)
    return load_settings(None)


def _emit_everywhere() -> None:
    from twin.logs import redactor

    # Dynamic secrets (a login in progress) are registered by the code that receives them.
    redactor.add(PASSWORD)
    loggers = [logging.getLogger(n) for n in ("twin.api", "telethon.network", "aiohttp.access", "")]
    for logger in loggers:
        logger.warning("config hash %s key %s", API_HASH, LLM_KEY)
        logger.info("Authorization: Bearer %s", API_TOKEN)
        logger.info("sign in with code=%s password=%s", LOGIN_CODE, PASSWORD)
        logger.info("session %s", SESSION)
        logger.info({"phone_code": LOGIN_CODE, "api_key": LLM_KEY})
        try:
            raise RuntimeError(f"provider rejected key {LLM_KEY} and session {SESSION}")
        except RuntimeError:
            logger.exception("call failed for %s", API_TOKEN)
    logging.getLogger("twin.x").error("quoted %s", json.dumps({"password": PASSWORD}))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_reaches_any_log_path(settings, fmt: str) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", fmt, settings.secret_values(), stream=stream)
    _emit_everywhere()
    output = stream.getvalue()
    assert output.count("\n") >= 20  # the records were really written
    for secret in (API_TOKEN, API_HASH, LLM_KEY, PASSWORD, LOGIN_CODE, SESSION, SESSION[:60]):
        assert secret not in output, f"{secret[:12]}… leaked in {fmt} logs"
    assert "RuntimeError" in output  # tracebacks are kept, only secrets are masked
    if fmt == "json":
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert {r["logger"] for r in records} >= {"twin.api", "telethon.network", "root"}


def test_request_id_is_attached_to_records() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "json", stream=stream)
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("twin.api").info("handled")
    finally:
        request_id_var.reset(token)
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] == "req-123"


def test_redactor_keeps_ordinary_text_readable() -> None:
    redact = Redactor(["hunter22"])
    assert redact("GET /dialogs 200 status code: 404") == "GET /dialogs 200 status code: 404"
    assert redact("pw hunter22 in a sentence") == "pw *** in a sentence"
    assert redact('{"code": "12345"}') == '{"code": "***"}'


# --- provider SDKs and Python warnings ------------------------------------------------------------

PROMPT = "my whole private prompt 4711"


async def _ask_openai(base_url: str) -> None:
    import openai

    async with openai.AsyncOpenAI(api_key="sk-test", base_url=base_url + "/v1") as client:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
        )


@pytest.mark.parametrize("sdk_debug", [False, True])
async def test_sdk_debug_logs_only_with_sdk_debug(
    sdk_debug: bool, fake_openai, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`--log-level DEBUG` is for twin; the openai SDK's DEBUG lines (the request's options,
    whole prompts included) appear only with `[logging] sdk_debug = true`."""
    from twin.cli import build_parser, load

    if sdk_debug:
        monkeypatch.setenv("TWIN_LOGGING__SDK_DEBUG", "true")
    load(build_parser().parse_args(["run", "--log-level", "DEBUG"]))
    logging.getLogger("twin.test").debug("twin's own debug line")
    await _ask_openai(fake_openai.base_url)
    output = capsys.readouterr().err
    assert "twin's own debug line" in output
    assert "HTTP Request: POST" in output  # the SDKs' INFO lines stay
    assert ("Request options" in output) is sdk_debug
    assert (PROMPT in output) is sdk_debug


def test_sdk_loggers_follow_a_quieter_level() -> None:
    setup_logging("WARNING", stream=io.StringIO())
    assert not logging.getLogger("openai._base_client").isEnabledFor(logging.INFO)
    setup_logging("DEBUG", stream=io.StringIO())
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.INFO


async def test_a_warning_while_the_daemon_runs_is_one_json_record(tmp_path) -> None:
    """A Python warning goes through logging: with --log-format json, stderr stays JSON lines."""
    import sys

    from tests.core.running import clean_environment, run_until_healthy

    # The real daemon, with one warning raised while it starts (as a library would).
    script = (
        "import sys, warnings\n"
        "import twin.app\n"
        "create_app = twin.app.create_app\n"
        "def with_warning(settings, **kwargs):\n"
        "    app = create_app(settings, **kwargs)\n"
        "    async def warn(app):\n"
        "        warnings.warn('something is deprecated', UserWarning, stacklevel=1)\n"
        "    app.on_startup.append(warn)\n"
        "    return app\n"
        "twin.app.create_app = with_warning\n"
        "from twin.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = clean_environment(
        PYTHONPATH=str(REPO), TWIN_API__TOKENS="a-long-enough-token-123", PYTHONWARNINGS="default"
    )
    run = await run_until_healthy(
        [sys.executable, "-c", script, "run", "--log-format", "json", "--port", "0"],
        cwd=tmp_path,
        env=env,
    )
    assert run.exit_code == 0, run.output
    records = []
    for line in run.lines:
        if line.strip():
            records.append(json.loads(line))  # every line is a JSON record
    warned = [r for r in records if r["logger"] == "py.warnings"]
    assert len(warned) == 1, run.output
    assert warned[0]["level"] == "WARNING"
    assert "UserWarning: something is deprecated" in warned[0]["message"]
