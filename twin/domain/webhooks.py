"""Pure parts of outbound webhooks (the external messenger channel): what a webhook says about
a turn, how it is signed, when a failed delivery is tried again, and share links.

Signature: header `X-Twin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
under the channel's secret (Stripe's scheme: the timestamp is signed, so a receiver can refuse
replays). Share links: `<payload>.<signature>`, both base64url, the payload naming the
conversation and the expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "SIGNATURE_HEADER",
    "Turn",
    "contact_in",
    "open_share",
    "retry_delay",
    "share_token",
    "sign",
    "turn_fields",
    "verify",
]

SIGNATURE_HEADER = "X-Twin-Signature"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# A phone number: an optional +, then 10-15 digits with spaces, dashes, dots or parentheses.
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]{0,2}\d){9,14}(?!\w)")
# Intents that show interest in what the owner offers, and those of a bot on the other side.
INTERESTED = frozenset({"request", "scheduling", "question"})
BOTLIKE = frozenset({"spam"})


def contact_in(text: str) -> dict[str, str] | None:
    """The phone number and/or e-mail address the user sent, if any (`get_contact`)."""
    found: dict[str, str] = {}
    email = _EMAIL.search(text)
    if email:
        found["email"] = email.group(0)
    phone = _PHONE.search(_EMAIL.sub(" ", text))
    if phone:
        digits = re.sub(r"\D", "", phone.group(0))
        found["phone"] = ("+" if phone.group(0).startswith("+") else "") + digits
    return found or None


@dataclass(frozen=True, slots=True)
class Turn:
    """What the brain made of the user's message, as the webhook reports it."""

    user_text: str
    intent: str | None
    escalated: bool
    end_conversation: bool


def turn_fields(turn: Turn) -> dict[str, Any]:
    """get_contact, interest, is_bot, operator, close, success."""
    intent = (turn.intent or "").lower()
    close = turn.end_conversation and not turn.escalated
    return {
        "get_contact": contact_in(turn.user_text),
        "interest": intent in INTERESTED,
        "is_bot": intent in BOTLIKE,
        "operator": turn.escalated,
        "close": close,
        # the dialogue ended on its own after the user asked for something: its goal reached
        "success": close and intent in INTERESTED,
    }


def sign(secret: str, body: bytes, now: float) -> str:
    stamp = str(int(now))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """Whether `header` signs `body` under `secret` within `tolerance` seconds (receivers)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), given)


def retry_delay(attempts: int, rng: random.Random, base: float = 1.0, cap: float = 600.0) -> float:
    """The wait after the `attempts`-th failed attempt: exponential, with jitter in its upper
    half (1-2 s, 2-4 s, 4-8 s … up to `cap`)."""
    ceiling = min(cap, base * 2 ** max(0, attempts))
    return rng.uniform(ceiling / 2, ceiling)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _share_key(secret: str) -> bytes:
    return hashlib.sha256(b"twin share link\x00" + secret.encode()).digest()


def share_token(secret: str, account_id: int, chat_id: int, expires: datetime) -> str:
    payload = json.dumps(
        {"a": account_id, "c": chat_id, "e": int(expires.timestamp())}, separators=(",", ":")
    ).encode()
    signature = hmac.new(_share_key(secret), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def open_share(secret: str, token: str, now: datetime) -> tuple[int, int] | None:
    """(account_id, chat_id) of a valid, unexpired share token; None otherwise."""
    try:
        head, _, tail = token.partition(".")
        payload, signature = _unb64(head), _unb64(tail)
        expected = hmac.new(_share_key(secret), payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            return None
        data = json.loads(payload)
        if int(data["e"]) < now.timestamp():
            return None
        return int(data["a"]), int(data["c"])
    except (ValueError, KeyError, TypeError):
        return None
