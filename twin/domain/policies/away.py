"""Away messages and greetings, after Telegram Business quick replies."""

from __future__ import annotations

from datetime import datetime, timedelta


def should_send_away(last_away_at: datetime | None, now: datetime, repeat_hours: float) -> bool:
    """One away message per chat per `repeat_hours` (0 = on every message outside hours)."""
    if last_away_at is None:
        return True
    return now - last_away_at >= timedelta(hours=repeat_hours)


def needs_greeting(
    chat_is_new: bool,
    last_incoming_before: datetime | None,
    now: datetime,
    greeting_after_days: float,
) -> bool:
    """Greet a new chat, or one the contact has not written to for `greeting_after_days`.

    `greeting_after_days = 0` keeps greetings for new chats only.
    """
    if chat_is_new:
        return True
    if greeting_after_days <= 0:
        return False
    if last_incoming_before is None:
        return True  # an existing chat the contact never wrote in: their first message
    return now - last_incoming_before >= timedelta(days=greeting_after_days)
