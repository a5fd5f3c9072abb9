"""Signing in to the admin app (issue 19 §2): an admin key or a one-time link for a session
cookie (HttpOnly, SameSite=Strict, Secure but on plain-HTTP loopback), CSRF on every
state-changing request of a session, idle expiry, sign-out here and everywhere, and the key's
revocation ending its sessions — real HTTP into the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from tests.api.conftest import AUTH, TOKEN, assert_error
from tests.api.test_control import control_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys
from twin.app import Adapters, create_app
from twin.clock import ManualClock

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
async def app_client(aiohttp_client, engine_url, tmp_path):  # noqa: F811
    clock = ManualClock(T0)
    settings = control_settings(
        engine_url,
        tmp_path,
        api={"tokens": [TOKEN], "cors_origins": [], "session_idle_minutes": 30},
    )
    app = create_app(settings, adapters=Adapters(clock=clock))
    client = await aiohttp_client(app)
    client.clock = clock
    return client


async def sign_in(client: Any, **body: str) -> tuple[Any, dict]:
    response = await client.post("/app/session", json=body)
    return response, await response.json()


def session_cookie(response: web.Response) -> str:
    [header] = [h for h in response.headers.getall("Set-Cookie") if h.startswith("twin_session=")]
    return header


async def test_an_admin_key_signs_in_and_the_cookie_is_the_session(app_client) -> None:
    client = app_client
    response, body = await sign_in(client, key=TOKEN)
    assert response.status == 201, body
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a browser would not send it back
    assert response.headers["Cache-Control"] == "no-store"
    csrf = body["csrf_token"]
    assert len(csrf) >= 40 and body["idle_minutes"] == 30

    # no Authorization header: the cookie alone (GET needs no CSRF token)
    response = await client.get("/chats")
    assert response.status == 200
    response = await client.get("/app/session")
    assert (await response.json())["csrf_token"] == csrf  # the app reads it after a reload

    # a state-changing request of a session needs the token
    response = await client.post("/keys", json={"name": "n8n", "scopes": ["chat"]})
    assert response.status == 403
    assert "X-CSRF-Token" in assert_error(await response.json(), "forbidden")["message"]
    response = await client.post(
        "/keys", json={"name": "n8n", "scopes": ["chat"]}, headers={"X-CSRF-Token": "wrong"}
    )
    assert response.status == 403
    response = await client.post(
        "/keys", json={"name": "n8n", "scopes": ["chat"]}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 201

    # sign out: the cookie goes, and the session with it
    response = await client.delete("/app/session", headers={"X-CSRF-Token": csrf})
    assert response.status == 204
    assert 'twin_session=""' in session_cookie(response)
    response = await client.get("/chats")
    assert response.status == 401  # the jar dropped the cookie: a plain "no key"


async def test_a_signed_out_cookie_and_an_idle_one_are_refused(app_client) -> None:
    client = app_client
    response, _ = await sign_in(client, key=TOKEN)
    secret = session_cookie(response).split(";")[0].split("=", 1)[1]
    jar = {"twin_session": secret}

    await client.clock.advance(to=T0.replace(minute=29))  # 29 of the 30 idle minutes
    assert (await client.get("/chats", cookies=jar)).status == 200
    await client.clock.advance(to=T0.replace(minute=58))  # 29 minutes after the last request
    assert (await client.get("/chats", cookies=jar)).status == 200
    await client.clock.advance(to=T0.replace(hour=13, minute=29))  # 31 minutes idle
    response = await client.get("/chats", cookies=jar)
    assert response.status == 401
    assert "session has ended" in (await response.json())["error"]["message"]


async def test_sign_out_everywhere_and_the_keys_own_end(app_client) -> None:
    client = app_client
    first, _ = await sign_in(client, key=TOKEN)
    second, _ = await sign_in(client, key=TOKEN)
    jars = [
        {"twin_session": session_cookie(r).split(";")[0].split("=", 1)[1]}
        for r in (first, second)
    ]
    response = await client.delete("/app/sessions", headers=AUTH)
    assert (await response.json()) == {"ended": 2}
    for jar in jars:
        assert (await client.get("/chats", cookies=jar)).status == 401

    # a stored key signs in only with the admin scope and no account; revoked, its sessions end
    created = await client.post("/keys", json={"name": "ops", "scopes": ["admin"]}, headers=AUTH)
    ops = (await created.json())["key"]
    reader = await client.post(
        "/keys", json={"name": "bot", "scopes": ["chat"]}, headers=AUTH
    )
    response, body = await sign_in(client, key=(await reader.json())["key"])
    assert response.status == 403 and "admin key" in body["error"]["message"]
    response, _ = await sign_in(client, key=ops)
    assert response.status == 201
    jar = {"twin_session": session_cookie(response).split(";")[0].split("=", 1)[1]}
    assert (await client.get("/chats", cookies=jar)).status == 200
    assert (await client.delete("/keys/ops", headers=AUTH)).status == 200
    await client.clock.advance(to=T0.replace(minute=1))  # past the session cache
    assert (await client.get("/chats", cookies=jar)).status == 401


async def test_a_login_link_works_once(app_client) -> None:
    client = app_client
    token = await client.app[keys.APP_SESSIONS].create_link(15)
    response, body = await sign_in(client, link=token)
    assert response.status == 201, body
    response, body = await sign_in(client, link=token)
    assert response.status == 401 and "twin app-link" in body["error"]["message"]
    stale = await client.app[keys.APP_SESSIONS].create_link(15)
    await client.clock.advance(to=T0.replace(minute=16))
    response, _ = await sign_in(client, link=stale)
    assert response.status == 401


async def test_bad_sign_ins(app_client) -> None:
    client = app_client
    response, body = await sign_in(client, key="not-the-token")
    assert response.status == 401
    assert_error(body, "unauthorized")
    response = await client.post("/app/session", json={"key": TOKEN, "link": "x"})
    assert response.status == 422
    response = await client.post("/app/session", json={})
    assert response.status == 422
    for _ in range(5):  # the login limit (api.login_attempts = 5): then 429
        await sign_in(client, key="wrong")
    response, body = await sign_in(client, key=TOKEN)
    assert response.status == 429 and "Retry-After" in response.headers


async def test_secure_cookie_anywhere_but_loopback(app_client) -> None:
    response = await app_client.post(
        "/app/session", json={"key": TOKEN}, headers={"Host": "admin.example.com"}
    )
    assert response.status == 201
    assert "Secure" in session_cookie(response)


async def test_twin_app_link_prints_a_link_that_signs_in_once(aiohttp_client, tmp_path) -> None:
    import asyncio
    import os
    import sys

    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    env = {
        **os.environ,
        "TWIN_STORAGE__URL": url,
        "TWIN_SECURITY__SECRET_KEY": "control-test-secret-0123456789",
        "TWIN_API__PORT": "8123",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twin", "app-link", "--minutes", "5", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    link = out.decode().strip()
    assert link.startswith("http://127.0.0.1:8123/app/#login=") and "once" in err.decode()
    token = link.split("#login=", 1)[1]

    settings = control_settings(url, tmp_path)
    client = await aiohttp_client(create_app(settings))
    response, body = await sign_in(client, link=token)
    assert response.status == 201, body
    response, _ = await sign_in(client, link=token)
    assert response.status == 401


async def test_the_app_page_and_its_assets_are_public_and_locked_down(make_client) -> None:
    client = await make_client()
    response = await client.get("/app", allow_redirects=False)
    assert response.status == 308 and response.headers["Location"] == "/app/"
    response = await client.get("/app/")  # no key: the page holds no data
    assert response.status == 200 and response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    page = await response.text()
    assert '<script type="module" src="/app/static/app.js?v=' in page
    assert "media-src 'self'" in policy  # voice notes play from /messages/{id}/audio
    for name in (
        "app.js", "i18n.js", "htm-preact.module.js", "app.css", "LICENSE.preact",
        "pages/conversations.js", "words/ru.js",
    ):
        assert (await client.get(f"/app/static/{name}")).status == 200, name
    for name in ("nothing.js", "pages/nothing.js", "pages"):
        missing = await client.get(f"/app/static/{name}")
        assert missing.status == 404, name
        assert_error(await missing.json(), "not_found")


async def test_the_app_speaks_the_owners_language(app_client) -> None:
    """The session tells the app the language most of the owner's own messages are in (the
    style profile); without one, `[twin] language`; else nothing (the browser's)."""
    from twin import keys
    from twin.api.views.app_session import _app_language
    from twin.domain.style import OwnerMessage, StyleAccumulator

    client = app_client
    response, body = await sign_in(client, key=TOKEN)
    session = await (await client.get("/app/session")).json()
    assert session["language"] is None
    repo = client.app[keys.DATABASE].repo
    account = await repo.get_or_create_account("default")
    style = StyleAccumulator().add(
        OwnerMessage(text, 7, T0) for text in ("привет, как дела?", "да, завтра буду", "ok")
    )
    await repo.put_style_profile(account.id, style.to_dict())
    session = await (await client.get("/app/session")).json()
    assert session["language"] == "ru"
    # `[twin] language` as a code or a name; a language the app lacks is the browser's
    assert [_app_language(v) for v in ("ru", "Russian", "русский", "en-GB", "und-Latn")] == [
        "ru", "ru", "ru", "en", "en"
    ]
    assert [_app_language(v) for v in ("uk", "de", "", None)] == [None, None, None, None]
