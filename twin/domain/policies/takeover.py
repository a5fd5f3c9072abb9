"""The twin steps back: the owner's takeover of a chat (its window: restarted by each owner
message, capped from the first), the grace period ("answer only if I haven't answered within N
minutes") and what an owner's read receipt from another device cancels.

Pure: times come in as arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from twin.domain.models import require_aware
from twin.domain.policies.working_hours import WorkingHours, is_open, next_opening


class TakeoverResume(StrEnum):
    """What happens to the contact's messages that arrive while the owner has taken over."""

    ANSWER = "answer"  # deferred to the end of the pause: answered unless the owner writes again
    DROP = "drop"  # skipped (`paused`): the owner is expected to answer them


@dataclass(frozen=True, slots=True)
class TakeoverWindow:
    """A takeover: the owner's first message of it and the end of the pause."""

    started: datetime
    until: datetime


def takeover_window(
    owner_at: datetime,
    minutes: float,
    max_minutes: float,
    *,
    current: TakeoverWindow | None = None,
) -> TakeoverWindow | None:
    """The takeover after an owner's message dated `owner_at`; None when there is none
    (`minutes = 0`).

    Each message restarts the pause from itself (`owner_at + minutes`); `max_minutes` (0 = no
    cap) bounds the whole takeover from its first message, so the contact is never kept waiting
    longer than that by an owner who keeps writing. `current` is the chat's takeover as stored:
    while it runs (`until > owner_at`) the new message continues it (same start, never an earlier
    end: a message handed over late cannot shorten the pause); once it is over, the message
    starts a new one."""
    require_aware(owner_at, "owner_at")
    if minutes <= 0:
        return None
    running = current is not None and current.until > owner_at
    started = current.started if running and current is not None else owner_at
    until = owner_at + timedelta(minutes=minutes)
    if max_minutes > 0:
        until = min(until, started + timedelta(minutes=max_minutes))
    if running and current is not None:
        until = max(until, current.until)
    return TakeoverWindow(started, until)


def resumed_reply_at(
    reply_at: datetime, delay_s: float | None, now: datetime, hours: WorkingHours
) -> datetime | None:
    """When a reply deferred to the end of the owner's takeover is answered once the owner
    resumes the chat early, at `now`: its read delay (`delay_s`) after now, or after the next
    opening when the twin is closed now — the rule of the takeover's own end, brought forward.
    None when that is not earlier than `reply_at` (it stays as planned)."""
    require_aware(now, "now")
    start = now if is_open(hours, now) else next_opening(hours, now)
    if start is None:
        return None
    at = start + timedelta(seconds=max(0.0, delay_s or 0.0))
    return at if at < reply_at else None


def grace_until(first_message_at: datetime, grace_minutes: float) -> datetime | None:
    """The earliest a reply may go out under the grace period: `grace_minutes` after the
    contact's (first unanswered) message; None without a grace period."""
    require_aware(first_message_at, "first_message_at")
    if grace_minutes <= 0:
        return None
    return first_message_at + timedelta(minutes=grace_minutes)


def read_cancels(read_max_id: int, newest_message_id: int | None, *, has_grace: bool) -> bool:
    """Whether the owner reading the chat (from another device) up to `read_max_id` cancels a
    pending reply whose newest message is `newest_message_id`: only a reply waiting out a grace
    period, and only when the read covers every message it answers. A read is not a message: it
    never starts a takeover, and without a grace period it changes nothing."""
    if not has_grace or newest_message_id is None:
        return False
    return read_max_id >= newest_message_id
