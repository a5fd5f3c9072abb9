"""Several `twin run` processes on one PostgreSQL: a request for a Telegram account (or bot)
another process serves is answered by that process, whichever one received it.

A view that needs the account's live connection (send as the owner, dialogs, login, its safety
mode) raises `twin.errors.ServedElsewhere` before it changes anything, when the account is
served elsewhere. The middleware here then looks up the process that lists the account in
`cluster_processes` (a live heartbeat and an API address, `[cluster] advertise_url`), sends it
the same request — method, path, query, body, the caller's own credentials — and relays its
answer. The owner process checks the credentials and scopes again and does the work once.

A forwarded request carries `Twin-Forwarded: t=<unix time>,n=<nonce>,v1=<hex>`, an
HMAC-SHA256 over the time and nonce, method, raw path and query (sent as received, not
re-encoded), the id of the process it is addressed to and the body's hash, under a key
derived from the cluster's shared secret key (every process needs it anyway to decrypt the
sessions). A request whose signature verifies —
addressed to this process, within a minute, never seen before — was counted by the process
that received it first, so it is not counted against the API's rate limits a second time. A
request carrying the header is never forwarded again, verified or not (one hop: an account
that moved meanwhile answers 409). A header that does not verify is otherwise ignored.

The hop is plain HTTP unless `[cluster] advertise_url` says https: it carries the caller's
credentials, so keep the processes on a private network (or behind TLS).

Nothing is retried: a request whose connection failed before it was sent answers the 409 it
would have answered without forwarding; one sent but not answered (a timeout, the owner
stopped mid-request) answers 502 — the owner may have done it, so the caller should look
(GET /cluster, the account's messages) before trying again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from twin.api.errors import ApiError
from twin.api.middlewares import REQUEST_ID_HEADER, Handler, Middleware, request_id_of
from twin.errors import ServedElsewhere

log = logging.getLogger("twin.api.forwarding")

HEADER = "Twin-Forwarded"
TOLERANCE_SECONDS = 60.0  # a signature older (or newer) than this is not believed
FORWARDED: web.RequestKey[bool] = web.RequestKey("twin_forwarded", bool)

# Not passed on: hop-by-hop headers (RFC 9110 §7.6.1), the ones aiohttp sets for the new
# message, and the ones each hop writes itself (its rate-limit counts, CORS).
_HOP = frozenset(
    name.lower()
    for name in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
        "Content-Encoding",
        HEADER,
    )
)
_OWN_RESPONSE = ("x-ratelimit-", "access-control-", "x-request-id", "x-content-type-options")


def signature(key: bytes, method: str, path: str, to: str, body: bytes, now: float) -> str:
    """The `Twin-Forwarded` header of a request forwarded at `now` (Unix time) to process `to`
    (`path`: the raw path and query, as sent)."""
    stamp, nonce = str(int(now)), secrets.token_hex(8)  # the nonce: two alike stay two
    return f"t={stamp},n={nonce},v1={_digest(key, stamp + nonce, method, path, to, body)}"


def verified(
    key: bytes, header: str, method: str, path: str, me: str, body: bytes, now: float
) -> bool:
    """Whether `header` signs this request, addressed to process `me`, under `key`, made
    within the tolerance. Any malformed header is simply not verified."""
    stamp, nonce, given = _parts(header)
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return False
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        return False
    expected = _digest(key, stamp + nonce, method, path, me, body).encode()
    return hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape"))


def _parts(header: str) -> tuple[str, str, str]:
    """A header's time, nonce and signature (empty strings where missing)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    return parts.get("t", ""), parts.get("n", ""), parts.get("v1", "")


def _digest(key: bytes, stamp: str, method: str, path: str, to: str, body: bytes) -> str:
    message = b"\n".join(
        (
            stamp.encode(),
            method.upper().encode(),
            path.encode("utf-8", "surrogateescape"),
            to.encode(),
            hashlib.sha256(body).digest(),
        )
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def forwarded(request: web.BaseRequest) -> bool:
    """Whether another process of the cluster forwarded this request (its signature checked):
    it was counted against the rate limits there already."""
    return request.get(FORWARDED, False)


@dataclass(frozen=True, slots=True)
class Serving:
    """The live process that lists an account: its id, and its API address (None: it gave
    none — an older version — and cannot be forwarded to)."""

    process: str
    url: str | None


class Forwarding:
    """Finds the process serving an account and sends it a request; checks the requests
    other processes forwarded here. One HTTP client session for the process's life (`close()`
    on shutdown)."""

    def __init__(
        self,
        key: bytes,
        me: str,
        serving: Callable[[str], Awaitable[Serving | None]],
        *,
        timeout: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.me = me  # this process's id: a signature names the process it is addressed to
        self._serving = serving
        # Connecting (a free connection of the pool included) and each read; not the whole
        # answer, which may take as long as the owner's work does.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=30.0, sock_connect=5.0, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._seen: dict[str, float] = {}  # signatures taken, until they are stale anyway
        self.now = now

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def check(self, header: str, request: web.Request, body: bytes) -> bool:
        """Whether a forwarded request's header verifies — addressed to this process, and
        never taken before (a signature seen again is a replay)."""
        now = self.now()
        path = request.rel_url.raw_path_qs
        if not verified(self.key, header, request.method, path, self.me, body, now):
            return False
        if len(self._seen) > 1024:
            self._seen = {sig: until for sig, until in self._seen.items() if until > now}
        signed = _parts(header)[2]  # the signature itself: the header's other items vary
        if self._seen.get(signed, 0.0) > now:
            return False
        self._seen[signed] = now + 2 * TOLERANCE_SECONDS
        return True

    async def answer(self, request: web.Request, refused: ServedElsewhere) -> web.Response:
        """The answer of the process that serves `refused.account` to this request; `refused`
        itself (409) when no live process names an address for it or it cannot be reached."""
        try:
            if refused.owner is not None:  # looked up by the refusal itself
                owner: Serving | None = Serving(*refused.owner)
            else:
                owner = await self._serving(refused.account)
        except Exception as exc:  # the database is out: no one to ask
            log.warning("cannot look up who serves %r: %s", refused.account, exc)
            raise refused from None
        if owner is None or owner.url is None:
            raise refused
        url = owner.url
        body = await request.read()
        # The path and query as the client encoded them (not re-encoded by yarl), always from
        # "/" (an absolute-form target keeps only its path): exactly what the owner receives
        # and verifies.
        target = URL(url.rstrip("/") + request.rel_url.raw_path_qs, encoded=True)
        path = target.raw_path_qs
        headers = CIMultiDict(
            (name, value) for name, value in request.headers.items() if name.lower() not in _HOP
        )
        headers[HEADER] = signature(self.key, request.method, path, owner.process, body, self.now())
        headers[REQUEST_ID_HEADER] = request_id_of(request)  # one id in both processes' logs
        peer = request.remote or ""
        previous = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(
                request.method, target, data=body, headers=headers, allow_redirects=False
            ) as response:
                content = await response.read()
                relayed = CIMultiDict(
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() not in _HOP and not name.lower().startswith(_OWN_RESPONSE)
                )
                log.info(
                    "%s %s: forwarded to process %s, which serves %r: %d",
                    request.method,
                    request.path,
                    owner.process,
                    refused.account,
                    response.status,
                )
                return web.Response(status=response.status, body=content, headers=relayed)
        except aiohttp.ClientConnectorError as exc:  # nothing was sent
            log.warning("cannot reach %s, which serves %r: %s", url, refused.account, exc)
            raise refused from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("forwarded to %s for %r, no answer: %r", url, refused.account, exc)
            raise ApiError(
                502,
                f"The request was passed to the twin process serving account "
                f"'{refused.account}', which did not answer; it may have been carried out "
                "there: check before trying again (GET /cluster).",
            ) from None


FORWARDING: web.AppKey[Forwarding] = web.AppKey("twin_forwarding", Forwarding)


def forwarding_middleware() -> Middleware:
    """Marks requests another process forwarded (signature checked) and forwards those for an
    account served elsewhere. Runs before authentication: the owner process authenticates
    the forwarded request itself. A request carrying the forwarding header, verified or not,
    is never forwarded again (one hop: no loops, whatever the processes believe)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        forwarding = request.app.get(FORWARDING)
        if forwarding is None:
            return await handler(request)
        header = request.headers.get(HEADER)
        if header is not None:
            request[FORWARDED] = forwarding.check(header, request, await request.read())
            if not request[FORWARDED]:
                log.warning(
                    "%s %s: a %s header that does not verify (counted as any request)",
                    request.method,
                    request.path,
                    HEADER,
                )
        try:
            return await handler(request)
        except ServedElsewhere as refused:
            if header is not None:
                raise  # one hop: the account moved meanwhile
            return await forwarding.answer(request, refused)

    return middleware
