"""Issue 20 §3: the daemon imports only the SDKs its configuration uses (google-genai is ~85 MB
resident, the openai SDK ~60 MB, elevenlabs and PyAV more): with the openai provider and no
speech configured, neither google-genai, elevenlabs nor PyAV is loaded once it has started."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, json, sys
from aiohttp import web
from twin.config import load_settings
from twin.app import create_app

async def main():
    settings = load_settings(
        None,
        storage={"url": "sqlite+aiosqlite:///" + sys.argv[1] + "/twin.db"},
        security={"secret_key": "lazy-imports-secret-0123456789"},
        llm={"provider": "openai", "api_key": "sk-test", "model": "gpt-4o-mini"},
        stt={"provider": "none"},
        telegram={"api_id": 1, "api_hash": "hash"},
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()  # the whole start-up: database, services, accounts, worker
    loaded = [m for m in ("openai", "google.genai", "elevenlabs", "av") if m in sys.modules]
    await runner.cleanup()
    print(json.dumps(loaded))

asyncio.run(main())
"""


def test_only_the_configured_sdks_are_imported(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["openai"]


def test_the_old_max_accounts_key_still_counts(tmp_path, monkeypatch) -> None:
    """Configs from before [cluster]: `[telegram] max_accounts` is read as
    `[cluster] max_accounts` (unless that is set too), in the file and in the environment."""
    from twin.config import load_settings

    monkeypatch.chdir(tmp_path)  # no config.toml here
    assert load_settings(None, telegram={"max_accounts": 7}).cluster.max_accounts == 7
    both = load_settings(None, telegram={"max_accounts": 7}, cluster={"max_accounts": 3})
    assert both.cluster.max_accounts == 3
    (tmp_path / "old.toml").write_text("[telegram]\nmax_accounts = 4\n")
    assert load_settings(tmp_path / "old.toml").cluster.max_accounts == 4
    monkeypatch.setenv("TWIN_TELEGRAM__MAX_ACCOUNTS", "5")
    assert load_settings(None).cluster.max_accounts == 5
