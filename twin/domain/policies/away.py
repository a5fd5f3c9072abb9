"""Away messages and greetings, after Telegram Business (businessAwayMessage,
businessGreetingMessage).

Away message — when it applies (`AwayRule.mode`, Telegram's schedule of the away message):
- `always`: every message;
- `outside_hours`: outside the working hours (the older `[schedule] outside_hours = "away"` is
  the same thing and still works, alongside any mode);
- `custom`: inside one [start, end) range (a vacation);
- `off`: never (the default: the working hours and `outside_hours` decide alone).
Telegram's "only if offline" (`offline_only`): not sent while the owner was active on the
account in the last `offline_minutes` (Telegram: 10 minutes) — the owner is around to answer.
Once sent, a chat gets it again only after `away_repeat_hours`.

Greeting — sent to a new chat, or to one silent (no message either way) for
`greeting_after_days` (Telegram offers 7, 14, 21 or 28; any number works here). A greeting
answers the first message after the silence, and that message (and the greeting) break the
silence, so a chat is greeted at most once per period; a greeting already waiting in a pending
reply is not repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from twin.domain.models import SkipReason, choice, require_aware


class AwayMode(StrEnum):
    OFF = "off"
    ALWAYS = "always"
    OUTSIDE_HOURS = "outside_hours"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class AwayRule:
    mode: AwayMode = AwayMode.OFF
    start: datetime | None = None  # custom: the away range [start, end)
    end: datetime | None = None
    offline_only: bool = False  # Telegram's "only if offline"
    offline_minutes: float = 10.0

    def __post_init__(self) -> None:
        mode = choice(AwayMode, self.mode, "schedule.away")
        object.__setattr__(self, "mode", mode)
        if not (math.isfinite(self.offline_minutes) and self.offline_minutes >= 0):
            raise ValueError(
                f"schedule.away_offline_minutes: must be a finite number >= 0, "
                f"got {self.offline_minutes}"
            )
        if self.start is not None:
            require_aware(self.start, "schedule.away_start")
        if self.end is not None:
            require_aware(self.end, "schedule.away_end")
        if mode is AwayMode.CUSTOM:
            if self.start is None or self.end is None:
                raise ValueError("schedule.away = 'custom' needs away_start and away_end")
            if self.end <= self.start:
                raise ValueError(
                    f"schedule.away_end: {self.end.isoformat()} is not after away_start "
                    f"{self.start.isoformat()}"
                )


def away_applies(rule: AwayRule, now: datetime, *, open_now: bool) -> str | None:
    """Why the away message applies at `now` by the rule's mode, None when it does not."""
    if rule.mode is AwayMode.ALWAYS:
        return "away = always"
    if rule.mode is AwayMode.OUTSIDE_HOURS and not open_now:
        return "away = outside_hours"
    if rule.mode is AwayMode.CUSTOM:
        assert rule.start is not None and rule.end is not None  # checked in __post_init__
        if rule.start <= now < rule.end:
            return (
                f"away = custom ({rule.start.isoformat(timespec='minutes')} .. "
                f"{rule.end.isoformat(timespec='minutes')})"
            )
    return None


def owner_online(owner_active_at: datetime | None, now: datetime, minutes: float) -> bool:
    """The owner was active on the account less than `minutes` ago (activity stamped in the
    future, a clock skew, counts as now)."""
    if owner_active_at is None:
        return False
    require_aware(owner_active_at, "owner_active_at")
    return now - owner_active_at < timedelta(minutes=minutes)


def check_away(
    rule: AwayRule,
    now: datetime,
    *,
    closed: str | None,
    outside_hours_away: bool,
    repeat_hours: float,
    last_away_at: datetime | None,
    owner_active_at: datetime | None,
) -> tuple[SkipReason | None, str] | None:
    """The away step of a decision: None when no away message is due (the working hours
    decide); (None, why) to send it now; (reason, why) to stay silent.

    `closed` says why the working hours are closed now (None: open); `outside_hours_away` is
    the older `outside_hours = "away"`, which sends it outside the hours whatever the mode.
    """
    why = away_applies(rule, now, open_now=closed is None)
    if why is not None and closed is not None and rule.mode is AwayMode.OUTSIDE_HOURS:
        why = f"{closed}; {why}"
    elif why is None and closed is not None and outside_hours_away:
        why = f"{closed}; outside_hours = away"
    if why is None:
        return None
    if rule.offline_only and owner_online(owner_active_at, now, rule.offline_minutes):
        assert owner_active_at is not None  # owner_online(None, …) is False
        ago = max(0.0, (now - owner_active_at).total_seconds()) / 60
        return SkipReason.OWNER_ONLINE, (
            f"{why}; the owner was active {ago:.0f} min ago "
            f"({owner_active_at.isoformat(timespec='seconds')}), within "
            f"{rule.offline_minutes:g} min: no away message (away_only_if_offline = true)"
        )
    if not should_send_away(last_away_at, now, repeat_hours):
        assert last_away_at is not None  # should_send_away(None, …) is True
        return SkipReason.AWAY_ALREADY_SENT, (
            f"{why}; away message already sent at {last_away_at.isoformat(timespec='seconds')} "
            f"(repeat every {repeat_hours:g} h)"
        )
    return None, f"{why}; sending the away message now"


def should_send_away(last_away_at: datetime | None, now: datetime, repeat_hours: float) -> bool:
    """One away message per chat per `repeat_hours` (0 = on every message outside hours)."""
    if last_away_at is None:
        return True
    return now - last_away_at >= timedelta(hours=repeat_hours)


def needs_greeting(
    chat_is_new: bool,
    last_activity_before: datetime | None,
    now: datetime,
    greeting_after_days: float,
    *,
    greeting_pending: bool = False,
) -> bool:
    """Greet a new chat, or one with no message either way for `greeting_after_days`.

    `greeting_after_days = 0` keeps greetings for new chats only; `greeting_pending` (a reply
    carrying the greeting is still on its way) keeps it to one.
    """
    if greeting_pending:
        return False
    if chat_is_new:
        return True
    if greeting_after_days <= 0:
        return False
    if last_activity_before is None:
        return True  # an existing chat with no message stored yet: this is the first
    return now - last_activity_before >= timedelta(days=greeting_after_days)


def greeting_why(
    chat_is_new: bool,
    last_activity_before: datetime | None,
    now: datetime,
    greeting_after_days: float,
) -> str:
    """The explain line of a greeting `needs_greeting` asked for."""
    if chat_is_new:
        return "greeting: new chat"
    if last_activity_before is None:
        return "greeting: the first message of this chat"
    days = (now - last_activity_before).total_seconds() / 86400
    return (
        f"greeting: no message in this chat for {days:.1f} days "
        f"(greeting_after_days = {greeting_after_days:g})"
    )


def greeting_line(
    chat_is_new: bool,
    last_incoming_at: datetime | None,
    last_outgoing_at: datetime | None,
    now: datetime,
    greeting_after_days: float,
    *,
    greeting_pending: bool = False,
) -> str | None:
    """The explain line of the chat's greeting, None when it is not greeted: silence is
    counted from the newest message either way (the contact's, or the twin's or owner's)."""
    silent_since = max((t for t in (last_incoming_at, last_outgoing_at) if t), default=None)
    if not needs_greeting(
        chat_is_new, silent_since, now, greeting_after_days, greeting_pending=greeting_pending
    ):
        return None
    return greeting_why(chat_is_new, silent_since, now, greeting_after_days)
