"""Named API keys with scopes (issue 14, item 4): real HTTP into the real app, on SQLite and
PostgreSQL; the CLI as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import AUTH, TOKEN
from tests.api.test_control import control_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(make_client, engine_url, tmp_path):  # noqa: F811
    settings = control_settings(engine_url, tmp_path)
    return await make_client(settings=settings, real_database=True)


async def create(client, **body: Any) -> dict:
    response = await client.post("/keys", json=body, headers=AUTH)
    assert response.status == 201, await response.text()
    return await response.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_is_shown_once_and_stored_hashed(client, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        created = await create(client, name="n8n", scopes=["chat"])
        key = created["key"]
        # Used, refused and revoked: still never in a log line.
        assert (await client.post("/api/debug", json={}, headers=bearer(key))).status == 200
        assert (await client.get("/chats", headers={"X-API-Key": key})).status == 403
        assert (await client.get("/chats", headers=bearer(key[:-1] + "x"))).status == 401
    assert key.startswith("twin_") and len(key) == 48 and created["prefix"] == key[:12]
    assert created["scopes"] == ["chat"] and created["revoked_at"] is None
    listed = await (await client.get("/keys", headers=AUTH)).json()
    assert [k["name"] for k in listed["keys"]] == ["n8n"]
    assert key not in json.dumps(listed)
    repo = client.app[keys.DATABASE].repo
    [record] = await repo.list_keys()
    assert key not in str(record)
    assert record.hash != key and len(record.hash) == 64
    events = await repo.events_since(0, limit=100)
    assert key not in json.dumps([e.data for e in events])
    assert key not in caplog.text


async def test_scopes_headers_and_revocation(client) -> None:
    chat_key = (await create(client, name="widget", scopes=["chat"]))["key"]
    admin_key = (await create(client, name="ops", scopes=["admin"]))["key"]
    # A chat key reaches the chat API (both headers work) but not the control API.
    for headers in (bearer(chat_key), {"X-API-Key": chat_key}):
        debug = await client.post("/api/debug", json={"ping": 1}, headers=headers)
        assert debug.status == 200
    refused = await client.get("/chats", headers=bearer(chat_key))
    assert refused.status == 403
    assert (await refused.json())["error"]["type"] == "forbidden"
    assert (await client.post("/keys", json={"name": "x", "scopes": ["admin"]},
                              headers=bearer(chat_key))).status == 403
    # An admin key reaches everything, the chat API included.
    assert (await client.get("/chats", headers=bearer(admin_key))).status == 200
    assert (await client.post("/api/debug", json={}, headers=bearer(admin_key))).status == 200
    # Unknown and revoked keys are 401; the configured token stays an admin key.
    assert (await client.get("/chats", headers=bearer("twin_" + "x" * 43))).status == 401
    revoked = await client.delete("/keys/widget", headers=AUTH)
    assert revoked.status == 200 and (await revoked.json())["revoked_at"] is not None
    assert (await client.post("/api/debug", json={}, headers=bearer(chat_key))).status == 401
    assert (await client.delete("/keys/nobody", headers=AUTH)).status == 404
    assert (await client.get("/chats", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_a_key_bound_to_an_account_sees_nothing_of_another(client) -> None:
    """More endpoints in tests/api/test_key_bindings.py."""
    repo = client.app[keys.DATABASE].repo
    await repo.get_or_create_account("shop")
    await repo.get_or_create_account("home")
    shop = (await create(client, name="shop-admin", scopes=["admin"], account="shop"))["key"]
    assert (await client.get("/chats?account=shop", headers=bearer(shop))).status == 200
    assert (await client.get("/chats", headers=bearer(shop))).status == 200  # its own account
    for path in ("/chats?account=home", "/settings?account=home", "/stats?account=home",
                 "/chats?account=default", "/auth/status?account=home"):
        response = await client.get(path, headers=bearer(shop))
        assert response.status == 404, path
    paused = await client.post(
        "/chats/5/pause", json={"account": "home", "minutes": 5}, headers=bearer(shop)
    )
    assert paused.status == 404
    assert (await client.delete("/accounts/home", headers=bearer(shop))).status == 404
    assert (await client.get("/keys", headers=bearer(shop))).status == 403


async def test_bad_keys_are_refused_in_the_error_shape(client) -> None:
    bad = await client.post("/keys", json={"name": "-x", "scopes": ["root"]}, headers=AUTH)
    assert bad.status == 422
    fields = {d["field"] for d in (await bad.json())["error"]["details"]}
    assert fields == {"name", "scopes.0"}
    await create(client, name="dup", scopes=["chat"])
    duplicate = await client.post("/keys", json={"name": "dup", "scopes": ["chat"]}, headers=AUTH)
    assert duplicate.status == 409
    unknown = await client.post(
        "/keys", json={"name": "z", "scopes": ["chat"], "account": "nobody"}, headers=AUTH
    )
    assert unknown.status == 404


def test_the_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TWIN_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}",
        "TWIN_SECURITY__SECRET_KEY": "cli-keys-test-secret-0123456789",
    }

    def twin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "twin", *args], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=60, check=False,
        )

    made = twin("keys", "create", "--name", "n8n", "--scope", "chat")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("twin_") and "shown" in made.stderr and key not in made.stderr
    assert made.stdout == key + "\n"  # the key alone: scripts can capture it
    listed = twin("keys", "list", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["name"] == "n8n" and row["scopes"] == ["chat"] and row["revoked_at"] is None
    assert key not in listed.stdout
    [line] = twin("keys", "list").stdout.splitlines()
    assert line.startswith("n8n ") and key[:12] in line and key not in line
    assert "created " in line and "last used never, active" in line
    assert twin("keys", "revoke", "n8n").returncode == 0
    [line] = twin("keys", "list").stdout.splitlines()
    assert line.endswith(" UTC") and ", revoked " in line
    [row] = [json.loads(line) for line in twin("keys", "list", "--json").stdout.splitlines()]
    assert row["revoked_at"] is not None
    assert twin("keys", "revoke", "nobody").returncode != 0
