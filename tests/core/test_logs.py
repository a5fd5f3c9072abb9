"""Secrets, phone codes, passwords and session data never reach the logs, whatever the path."""

from __future__ import annotations

import io
import json
import logging

import pytest

from twin.config import load_settings
from twin.logs import Redactor, request_id_var, setup_logging

API_TOKEN = "tok-9f8e7d6c5b4a"
API_HASH = "0123456789abcdef0123456789abcdef"
LLM_KEY = "sk-live-ABCDEF123456"
PASSWORD = "correct horse battery"
LOGIN_CODE = "73519"
SESSION = "1" + "BQAAAHZpbnR3aW4tc2Vzc2lvbi1kYXRh" * 12  # the shape of a StringSession


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
