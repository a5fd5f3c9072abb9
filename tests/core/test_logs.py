"""Secrets, phone codes, passwords and session data never reach the logs, whatever the path."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from twin.config import load_settings
from twin.logs import Redactor, request_scope, setup_logging

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
    redactor.add(LOGIN_CODE, PASSWORD)
    names = ("twin.api", "twin.access", "twin.pipeline", "telethon.network", "aiohttp.access", "")
    for logger in map(logging.getLogger, names):
        logger.warning("config hash %s key %s", API_HASH, LLM_KEY)
        logger.info("Authorization: Bearer %s", API_TOKEN)
        logger.info("sign in with code=%s password=%s", LOGIN_CODE, PASSWORD)
        logger.info("the code %s was refused; retype the password %s", LOGIN_CODE, PASSWORD)
        logger.info("session %s", SESSION)
        logger.info({"phone_code": LOGIN_CODE, "api_key": LLM_KEY})
        # structured fields (the JSON format writes each as a key)
        logger.info("step", extra={"error": f"rejected key {LLM_KEY}", "path": f"/{API_TOKEN}"})
        # ordinary words next to key names are prose, not values
        logger.warning("%s", WORDS)
        try:
            raise RuntimeError(f"provider rejected key {LLM_KEY} and session {SESSION}")
        except RuntimeError:
            logger.exception("call failed for %s", API_TOKEN)
    logging.getLogger("twin.x").error("quoted %s", json.dumps({"password": PASSWORD}))


# What the redactor once garbled ("llm.api_key: *** for…"), and a peer id that contains the
# registered login code.
WORDS = "llm.api_key: required for provider openai; token: expired; chat 1735190000"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_reaches_any_log_path(settings, fmt: str) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", fmt, settings.secret_values(), stream=stream)
    _emit_everywhere()
    output = stream.getvalue()
    assert output.count("\n") >= 20  # the records were really written
    masked = output.replace(WORDS, "")  # it has the login code inside a longer number
    for secret in (API_TOKEN, API_HASH, LLM_KEY, PASSWORD, LOGIN_CODE, SESSION, SESSION[:60]):
        assert secret not in masked, f"{secret[:12]}… leaked in {fmt} logs"
    assert "RuntimeError" in output  # tracebacks are kept, only secrets are masked
    assert output.count(WORDS) == 6  # once per logger, untouched
    if fmt == "json":
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert {r["logger"] for r in records} >= {"twin.api", "telethon.network", "root"}
        fields = [r for r in records if r["message"] == "step"]
        assert len(fields) == 5  # Telethon's logger drops INFO
        assert all(r["error"] == "rejected key ***" and r["path"] == "/***" for r in fields)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        # values: masked
        ("api_key: sk-abc123", "api_key: ***"),
        ("api_key=required", "api_key=***"),  # an assignment is a value, whatever it reads
        ('{"token": "expired"}', '{"token": "***"}'),  # so is anything quoted
        ("{'password': 'hunter'}", "{'password': '***'}"),
        ("secret_key: Zm9vYmFy", "secret_key: ***"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        ("code: 12345", "code: ***"),
        ("session " + "aB3" * 30, "session ***"),
        # words: kept
        ("llm.api_key: required for provider 'openai'", None),
        ("token: expired, password: wrong.", None),
        ("GET /dialogs 200 status code: 404", None),
        ("/var/lib/twin/" + "x" * 80, None),  # a long path is not base64
        ("peer 1135790000 and message 113579", None),  # the short secret inside numbers
    ],
)
def test_the_redactor_masks_values_not_words(text: str, redacted: str | None) -> None:
    assert Redactor(["13579"])(text) == (text if redacted is None else redacted)


def test_a_short_secret_is_masked_where_it_stands_alone() -> None:
    redact = Redactor(["13579", "hunter22"])
    assert redact("the code 13579 was refused") == "the code *** was refused"
    assert redact("pw hunter22 in a sentence, xhunter22y too") == "pw *** in a sentence, x***y too"


def test_request_id_is_attached_to_records() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "json", stream=stream)
    with request_scope("req-123"):
        logging.getLogger("twin.api").info("handled")
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] == "req-123"


async def test_a_task_started_by_a_request_stops_carrying_its_id_when_it_ends() -> None:
    """A Telegram connection opened by a login request lives on: what it logs afterwards (a
    message received, a reply sent) is no part of that request."""
    import asyncio

    stream = io.StringIO()
    setup_logging("INFO", "json", stream=stream)
    log = logging.getLogger("twin.test")
    later = asyncio.Event()

    async def background() -> None:
        log.info("during")
        await later.wait()
        log.info("after")

    with request_scope("req-login"):
        task = asyncio.create_task(background())  # copies the request's context
        await asyncio.sleep(0)
    later.set()
    await task
    records = {r["message"]: r for r in map(json.loads, stream.getvalue().splitlines())}
    assert records["during"]["request_id"] == "req-login"
    assert "request_id" not in records["after"]


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
    # The HTTP clients' one line per request is chatter unless asked for.
    assert ("HTTP Request: POST" in output) is sdk_debug
    assert ("Request options" in output) is sdk_debug
    assert (PROMPT in output) is sdk_debug


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_library_loggers_log_warnings_only(level: str) -> None:
    setup_logging(level, stream=io.StringIO())
    for name in ("openai._base_client", "httpx", "alembic.runtime.migration", "aiosqlite"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
    setup_logging(level, stream=io.StringIO(), sdk_debug=True)
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
    setup_logging("ERROR", stream=io.StringIO())
    assert not logging.getLogger("httpx").isEnabledFor(logging.WARNING)


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
