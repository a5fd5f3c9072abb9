"""Every Telegram call of an account passes its safety governor (twin.ports.CallGuard): the
category of each request, and the client hook that asks the guard before the call and tells it
Telegram's warnings after.

The hook is Telethon's one funnel, `_call` (every high-level method and every raw request, on
the main connection and on other data centres' senders, goes through it). With a guard the
client's own `flood_sleep_threshold` is 0, so every FLOOD_WAIT surfaces here: the guard records
it, blocks the category until the wait is over (no call of it reaches Telegram early: Telethon
would otherwise also refuse it locally) and, for a short wait, has the call made again once the
wait is over — at most `SHORT_WAIT_RETRIES` times, then the FloodWaitError is raised as a long
one would be (RateLimited with retry_after for the caller). A refused uncategorised call (the
update loop's getDifference while Telegram asked it to wait) is refused as Telethon's own
FloodWaitError, which its update loop survives."""

from __future__ import annotations

import math
from typing import Any

from telethon import errors, utils
from telethon.tl import functions, types

from twin.adapters.telegram.refusals import rpc_message
from twin.domain.safety import SPAM_LIMITS, CallCategory
from twin.errors import RateLimited
from twin.ports import CallGuard

SHORT_WAIT_RETRIES = 3

_CATEGORY: dict[int, CallCategory] = {
    request.CONSTRUCTOR_ID: category
    for category, requests in {
        CallCategory.SEND: (
            functions.messages.SendMessageRequest,
            functions.messages.SendMediaRequest,
            functions.messages.SendMultiMediaRequest,
            functions.messages.ForwardMessagesRequest,
        ),
        CallCategory.RESOLVE: (
            functions.contacts.ResolveUsernameRequest,
            functions.contacts.ResolvePhoneRequest,
            functions.contacts.ImportContactsRequest,
        ),
        CallCategory.DIALOGS: (
            functions.messages.GetDialogsRequest,
            functions.messages.GetPeerDialogsRequest,
        ),
        CallCategory.HISTORY: (
            functions.messages.GetHistoryRequest,
            functions.messages.SearchRequest,
            functions.messages.GetMessagesRequest,
            functions.channels.GetMessagesRequest,
        ),
        CallCategory.UPLOAD: (
            functions.upload.SaveFilePartRequest,
            functions.upload.SaveBigFilePartRequest,
        ),
    }.items()
    for request in requests
}


def call_category(request: Any) -> CallCategory:
    """The governor's category of a Telethon request (wrappers such as InvokeWithLayer are
    looked through)."""
    inner = getattr(request, "query", None)
    if inner is not None and hasattr(inner, "CONSTRUCTOR_ID"):
        return call_category(inner)
    return _CATEGORY.get(getattr(request, "CONSTRUCTOR_ID", 0), CallCategory.OTHER)


def to_self(request: Any, self_id: int | None) -> bool:
    """Whether a request writes to the account's own Saved Messages."""
    peer = getattr(request, "peer", None)
    if isinstance(peer, types.InputPeerSelf):
        return True
    return bool(
        self_id is not None and isinstance(peer, types.InputPeerUser) and peer.user_id == self_id
    )


class GuardedCalls:
    """The mixin of the account's Telethon client that asks its guard around every call."""

    guard: CallGuard | None = None

    async def _call(  # type: ignore[no-untyped-def]
        self, sender, request, ordered=False, flood_sleep_threshold=None
    ):
        guard = self.guard
        call = super()._call  # type: ignore[misc]
        if guard is None:
            return await call(sender, request, ordered, flood_sleep_threshold)
        first = request[0] if utils.is_list_like(request) else request
        category = call_category(first)
        own = to_self(first, getattr(self._mb_entity_cache, "self_id", None))  # type: ignore[attr-defined]
        method = type(first).__name__
        for attempt in range(SHORT_WAIT_RETRIES + 1):
            try:
                await guard.admit(category, to_self=own, method=method)
            except RateLimited as exc:
                if category is not CallCategory.OTHER:
                    raise
                # Telethon's own machinery (the update loop's getDifference…) knows only its
                # FloodWaitError: the same refusal in its terms (translated back by rpc_errors).
                seconds = math.ceil(exc.retry_after or 1.0)
                raise errors.FloodWaitError(request=first, capture=seconds) from exc
            try:
                return await call(sender, request, ordered, flood_sleep_threshold)
            except (errors.FloodWaitError, errors.FloodPremiumWaitError) as exc:
                short = await guard.flood_wait(category, float(exc.seconds), method)
                if not short or attempt == SHORT_WAIT_RETRIES:
                    raise
            except errors.RPCError as exc:
                message = rpc_message(exc)
                if message in SPAM_LIMITS:
                    await guard.spam_limited(category, message)
                raise
        raise AssertionError("unreachable")  # pragma: no cover
