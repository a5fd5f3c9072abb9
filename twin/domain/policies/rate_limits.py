"""Sliding-window reply limits and the debounce that batches a burst of messages into one reply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.domain.models import SkipReason, require_aware

WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Replies allowed in any sliding hour; 0 = no limit."""

    per_chat_per_hour: int = 20
    per_account_per_hour: int = 200

    def __post_init__(self) -> None:
        for name in ("per_chat_per_hour", "per_account_per_hour"):
            if getattr(self, name) < 0:
                raise ValueError(f"rate limit {name} must be >= 0, got {getattr(self, name)}")


def replies_in_window(reply_times: Iterable[datetime], now: datetime) -> int:
    """Replies within the hour before `now`; later ones (already scheduled) count too."""
    since = now - WINDOW
    return sum(1 for t in reply_times if t > since)


def check_rate(
    limits: RateLimits,
    chat_reply_times: Iterable[datetime],
    account_reply_times: Iterable[datetime],
    now: datetime,
) -> SkipReason | None:
    """None if one more reply fits both windows, else which limit is hit (the chat's first)."""
    require_aware(now, "now")
    chat_limit, account_limit = limits.per_chat_per_hour, limits.per_account_per_hour
    if chat_limit and replies_in_window(chat_reply_times, now) >= chat_limit:
        return SkipReason.RATE_LIMITED_CHAT
    if account_limit and replies_in_window(account_reply_times, now) >= account_limit:
        return SkipReason.RATE_LIMITED_ACCOUNT
    return None


def debounce_deadline(
    first_message_at: datetime, last_message_at: datetime, window_s: float, max_s: float
) -> datetime:
    """When to stop waiting for more messages of a burst.

    Each message restarts the `window_s` quiet period, but the batch never waits more than
    `max_s` after its first message, so a chatty contact still gets an answer. Never earlier
    than the last message itself.
    """
    require_aware(first_message_at, "first_message_at")
    require_aware(last_message_at, "last_message_at")
    if window_s < 0 or max_s < 0:
        raise ValueError(f"debounce window/max must be >= 0, got {window_s}/{max_s}")
    if last_message_at < first_message_at:
        raise ValueError("debounce: last message is older than the first one")
    quiet = last_message_at + timedelta(seconds=window_s)
    cap = first_message_at + timedelta(seconds=max_s)
    return max(min(quiet, cap), last_message_at)
