"""Authentication (configured tokens and stored API keys) and scopes for every route that is
not explicitly public.

Public: `GET /health` (load balancers, uptime checks), the `/docs` page and its static assets
(generic Swagger UI code, nothing about this daemon; the page asks for the token and sends it
when it fetches `/openapi.json`), and CORS preflights (browsers never send credentials with
them). Everything else — including unknown paths, `/openapi.json` and `/metrics` — needs
`Authorization: Bearer <token>` (or `X-API-Key`). Fail closed: with no token configured and no
database for stored keys, protected routes answer 503 until the admin sets TWIN_API__TOKENS.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable, Collection, Sequence

from aiohttp import web
from pydantic import SecretStr

from twin import keys
from twin.api.errors import ApiError
from twin.api.middlewares import Handler, Middleware
from twin.api.validation import PRINCIPAL, endpoint_of
from twin.config import MIN_TOKEN_LENGTH
from twin.services.app_sessions import SessionUser
from twin.services.keys import Principal

log = logging.getLogger("twin.api.auth")

# Which configured token a request presented, as a fingerprint (never the token itself): the
# key of the per-token rate limit, safe to keep in memory and to log.
TOKEN_ID: web.RequestKey[str] = web.RequestKey("twin_token_id", str)
# The admin app's browser session of a request made with its cookie (twin.services.app_sessions)
SESSION_COOKIE = "twin_session"
APP_SESSION: web.RequestKey[SessionUser] = web.RequestKey("twin_app_session", SessionUser)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = 'Bearer realm="twin"'
_INVALID = 'Bearer realm="twin", error="invalid_token"'


def configured_tokens(tokens: Sequence[SecretStr]) -> list[bytes]:
    values = (token.get_secret_value().strip() for token in tokens)
    return [value.encode() for value in values if value]


def token_matches(candidate: str, tokens: Collection[bytes]) -> bool:
    """Constant-time check against every configured token (no early exit on a match)."""
    return matching_token(candidate, list(tokens)) is not None


def matching_token(candidate: str, tokens: Sequence[bytes]) -> int | None:
    """The index of the configured token `candidate` is, compared in constant time with every
    one of them (no early exit on a match); None if it is none of them."""
    try:
        given = candidate.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    found = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(given, token):
            found = index
    return found


def fingerprint(token: bytes) -> str:
    """A short, one-way name for a token (SHA-256 prefix), usable as a key or in a log."""
    return hashlib.sha256(token).hexdigest()[:16]


def auth_middleware(
    tokens: Sequence[SecretStr], is_public: Callable[[web.Request], bool]
) -> Middleware:
    """Who is calling: a configured token (an admin key) or a stored API key, sent as
    `Authorization: Bearer <key>` or `X-API-Key: <key>`; 401 for none or an unknown or revoked
    one, 403 when its scopes do not include the endpoint's, or when it is bound to an account
    and the endpoint is declared `bound_keys=False`. Stored keys are looked up through
    twin.services.keys (cached there), configured tokens compared in constant time."""
    keyring = Keyring(tokens)
    known = keyring.known

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request):
            return await handler(request)
        api_keys = request.app.get(keys.API_KEYS)
        if not known and api_keys is None:
            raise ApiError(
                503,
                "The API has no access token configured: set TWIN_API__TOKENS in the daemon's "
                "environment (comma-separated) and restart it.",
            )
        credentials = _credentials(request)
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if not credentials and cookie and keys.APP_SESSIONS in request.app:
            session = await request.app[keys.APP_SESSIONS].who(cookie)
            if session is None:
                raise ApiError(401, "Your session has ended: sign in again.")
            given = request.headers.get("X-CSRF-Token", "")
            if request.method not in SAFE_METHODS and not hmac.compare_digest(
                given.encode("utf-8", "surrogateescape"), session.csrf.encode()
            ):
                raise ApiError(
                    403,
                    "Missing or wrong X-CSRF-Token: a browser session's state-changing requests "
                    "carry the token GET /app/session gives.",
                )
            request[APP_SESSION] = session
            request[TOKEN_ID] = f"session:{session.id_hash[:16]}"
            return await _authorized(request, handler, session.principal)
        if not credentials:
            raise ApiError(
                401,
                "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        found = await keyring.who(request, credentials)
        if found is None:
            raise ApiError(401, "Invalid API key.", headers={"WWW-Authenticate": _INVALID})
        principal, request[TOKEN_ID] = found
        return await _authorized(request, handler, principal)

    return middleware


class Keyring:
    """Who a key is: one of the configured tokens (an admin, compared in constant time) or a
    stored key (twin.services.keys, cached there) — for the auth middleware and the admin
    app's sign-in alike."""

    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self.known = configured_tokens(tokens)
        self.names = [fingerprint(token) for token in self.known]
        self._admins = [
            Principal(name=f"token:{name}", scopes=frozenset({"admin"})) for name in self.names
        ]

    async def who(self, request: web.Request, key: str) -> tuple[Principal, str] | None:
        """The key's principal and what the rate limit counts it as; None for no key known."""
        index = matching_token(key, self.known)
        if index is not None:
            return self._admins[index], self.names[index]
        api_keys = request.app.get(keys.API_KEYS)
        if api_keys is None or not key.startswith("twin_"):
            return None
        principal = await api_keys.who(key, asyncio.get_running_loop().time())
        return None if principal is None else (principal, f"key:{principal.key_id}")


async def _authorized(
    request: web.Request, handler: Handler, principal: Principal
) -> web.StreamResponse:
    """The endpoint's scope and account binding, for a caller known to be `principal`."""
    endpoint = endpoint_of(request.match_info.handler)
    scope = endpoint.scope if endpoint is not None else "admin"
    if not principal.allows(scope):
        raise ApiError(
            403,
            f"This API key's scopes ({', '.join(sorted(principal.scopes))}) do not include "
            f"'{scope}', which this endpoint needs.",
        )
    if principal.account is not None and endpoint is not None and not endpoint.bound_keys:
        raise ApiError(
            403,
            f"This API key is bound to account '{principal.account}'; this endpoint spans "
            "every account and needs a key that is not bound to one.",
        )
    request[PRINCIPAL] = principal
    return await handler(request)


def _credentials(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key", "").strip()


def principal_of(request: web.Request) -> Principal | None:
    """Who is calling (None on public endpoints)."""
    return request.get(PRINCIPAL)


def guard_channel(request: web.Request, instance: str, twin: str, what: str) -> None:
    """A channel's endpoint for this request's key: 404 when the key is bound to another
    account (the channel instance's conversations are that instance's), 403 when it is bound
    to another twin than the one answering there."""
    principal = principal_of(request)
    if principal is None:
        return
    if not principal.sees(instance):
        raise ApiError(404, f"There is no {what} for this API key's account.")
    if principal.twin not in (None, twin):
        raise ApiError(403, f"This API key is bound to twin '{principal.twin}', not '{twin}'.")


def log_token_problems(tokens: Sequence[SecretStr]) -> None:
    """Start-up warnings: no token (the API is closed) or tokens too short to resist guessing."""
    known = configured_tokens(tokens)
    if not known:
        log.warning(
            "api.tokens is empty: every API endpoint except GET /health answers 503 until "
            "TWIN_API__TOKENS is set"
        )
    short = sum(1 for token in known if len(token) < MIN_TOKEN_LENGTH)
    if short:
        log.warning(
            "%d API token(s) shorter than %d characters; use long random tokens "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
            short,
            MIN_TOKEN_LENGTH,
        )
