"""Signing in to the admin app (issue 19 §2, twin.services.app_sessions): an admin key or a
one-time login link for a browser session cookie; the session's CSRF token; signing out here or
everywhere. Bearer keys keep working for API clients, and the twin's endpoints accept either."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ConfigDict, Field, model_validator

from twin import keys
from twin.api.auth import APP_SESSION, SESSION_COOKIE, Keyring
from twin.api.errors import ApiError
from twin.api.ratelimit import login_attempt
from twin.api.validation import ApiModel, RouteTable, respond
from twin.services.keys import Principal
from twin.services.style import stored_profile

routes = RouteTable(tags=("app",))

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _one_of(schema: dict[str, Any]) -> None:
    """Exactly one of `key` and `link`, neither null: the schema says so too (no `default:
    null` on a string, which OpenAPI refuses)."""
    for name in ("key", "link"):
        schema["properties"][name].pop("default", None)
    schema["oneOf"] = [{"required": ["key"]}, {"required": ["link"]}]


class SignIn(ApiModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=_one_of)

    # one of the two, never null (the schema's oneOf says which combinations are valid)
    key: str = Field(None, min_length=1, max_length=256, description="an admin key")  # type: ignore[assignment]
    link: str = Field(  # type: ignore[assignment]
        None, min_length=1, max_length=256, description="the token of a `twin app-link` link"
    )

    @model_validator(mode="after")
    def _one(self) -> SignIn:
        if (self.key is None) == (self.link is None):
            raise ValueError("give either key or link")
        return self


class SessionOut(ApiModel):
    csrf_token: str = Field(
        description="send it as X-CSRF-Token with every state-changing request of this session"
    )
    expires_at: datetime = Field(description="the latest it ends (idle expiry comes sooner)")
    idle_minutes: float = Field(description="it ends after this long without a request")
    language: str | None = Field(
        None,
        description="the app's language for the owner: the one most of the owner's own Telegram "
        "messages are written in (the style profile of the first account that has one), else "
        "`[twin] language`; null: the browser's (en or ru)",
    )


class EndedOut(ApiModel):
    ended: int = Field(description="sessions signed out")


def _secure(request: web.Request) -> bool:
    """`Secure` cookies unless the app is reached over plain HTTP on loopback (a browser would
    not send a Secure cookie there; anywhere else plain HTTP should not carry a session)."""
    if request.secure:
        return True
    host = request.url.host or ""
    try:
        loopback_peer = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        loopback_peer = False
    return not (host in _LOOPBACK_NAMES and loopback_peer)


@routes.post(
    "/app/session", name="app_sign_in", summary="Sign in to the admin app", public=True, status=201
)
async def sign_in(request: web.Request, body: SignIn) -> SessionOut | web.Response:
    """Exchange an admin key (a configured token, or a stored key with the `admin` scope not
    bound to an account) or a one-time login link for a session cookie (`twin_session`:
    HttpOnly, SameSite=Strict, Secure unless plain HTTP on loopback). 401: an unknown key or a
    used or expired link; 403: a key that is not an admin's. Counted as a login attempt."""
    await login_attempt(request, "app_session", "app")
    settings = request.app[keys.SETTINGS].api
    if body.link is not None:
        if not await request.app[keys.APP_SESSIONS].use_link(body.link):
            raise ApiError(401, "This login link is unknown, used or expired: make a new one "
                           "with `twin app-link`.")
        principal = Principal(name="link", scopes=frozenset({"admin"}))
    else:
        principal = await _admin(request, body.key or "")
    created = await request.app[keys.APP_SESSIONS].sign_in(principal)
    out = SessionOut(
        csrf_token=created.csrf,
        expires_at=created.expires_at,
        idle_minutes=settings.session_idle_minutes,
    )
    response = respond(out, status=201)
    response.set_cookie(
        SESSION_COOKIE,
        created.secret,
        max_age=int(settings.session_max_days * 86400),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _admin(request: web.Request, key: str) -> Principal:
    found = await Keyring(request.app[keys.SETTINGS].api.tokens).who(request, key)
    if found is None:
        raise ApiError(401, "Invalid key.")
    principal = found[0]
    if "admin" not in principal.scopes or principal.account is not None:
        raise ApiError(403, "Only an admin key (scope admin, not bound to an account) signs in "
                       "to the admin app.")
    return principal


@routes.get("/app/session", name="app_session", summary="This browser session")
async def session(request: web.Request) -> SessionOut:
    """The session's CSRF token and expiry (the app reads it after a reload: it never keeps
    the token in the browser's storage). 404 for a request made with a key, not a session."""
    current = request.get(APP_SESSION)
    if current is None:
        raise ApiError(404, "This request was made with an API key, not a browser session.")
    return SessionOut(
        csrf_token=current.csrf,
        expires_at=current.expires_at,
        idle_minutes=request.app[keys.SETTINGS].api.session_idle_minutes,
        language=await _owner_language(request),
    )


APP_LANGUAGES = {"und-latn": "en"}  # Latin script: the one Latin-script language the app has


def _app_language(value: str | None) -> str | None:
    """The app's language (en, ru) for a language code or name, if it has one."""
    text = (value or "").strip().lower()
    for prefix, language in (("ru", "ru"), ("рус", "ru"), ("en", "en"), ("eng", "en")):
        if text.startswith(prefix):
            return language
    return APP_LANGUAGES.get(text)


async def _owner_language(request: web.Request) -> str | None:
    repo = request.app[keys.DATABASE].repo
    for account in await repo.list_accounts():
        if account.channel != "telegram":
            continue
        profile = await stored_profile(repo, account.id)
        if profile is not None and profile.languages:
            found = _app_language(profile.languages[0][0])
            if found is not None:
                return found
    return _app_language(request.app[keys.SETTINGS].twin.language)


@routes.delete(
    "/app/session", name="app_sign_out", summary="Sign out of this browser", status=204
)
async def sign_out(request: web.Request) -> web.Response:
    """End this session and clear its cookie (204)."""
    current = request.get(APP_SESSION)
    if current is not None:
        await request.app[keys.APP_SESSIONS].sign_out(current.id_hash)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.delete("/app/sessions", name="app_sign_out_everywhere", summary="Sign out everywhere")
async def sign_out_everywhere(request: web.Request) -> EndedOut:
    """End every browser session of the admin app (API keys are untouched: revoke those with
    `DELETE /keys/{name}`)."""
    return EndedOut(ended=await request.app[keys.APP_SESSIONS].sign_out_everywhere())
