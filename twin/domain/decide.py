"""The one decision per incoming message: reply (when), send the away message, defer, or skip.

Pure: the caller loads `ChatState` from storage, passes `now` and a `random.Random`, and gets
back a `Decision` whose `explain` lines say why, delays included, for logs and the admin UI.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from twin.domain.models import IncomingMessage, SkipReason, choice, require_aware
from twin.domain.policies.away import AwayRule, check_away, greeting_line
from twin.domain.policies.delays import Delay, HumanizeConfig, is_chat_active, read_delay
from twin.domain.policies.rate_limits import (
    RateLimits,
    check_rate,
    debounce_deadline,
    replies_in_window,
)
from twin.domain.policies.recipients import RecipientRules, check_recipient, recipient_why
from twin.domain.policies.takeover import TakeoverResume, grace_until
from twin.domain.policies.working_hours import WorkingHours, is_open, next_opening


class Action(StrEnum):
    REPLY = "reply"
    AWAY = "away"
    DEFER = "defer"
    SKIP = "skip"


class OutsideHoursMode(StrEnum):
    IGNORE = "ignore"  # stay silent
    AWAY = "away"  # send the away message (once per repeat window)
    DEFER = "defer"  # answer when working hours start again


@dataclass(frozen=True, slots=True)
class ChatState:
    """What storage knows about the chat, as of just before this message."""

    chat_is_new: bool = False
    paused_until: datetime | None = None
    last_away_at: datetime | None = None
    last_incoming_at: datetime | None = None  # the contact's previous message
    # the newest message from this side: sent by the twin or the owner, or a reply scheduled
    last_outgoing_at: datetime | None = None
    greeting_pending: bool = False  # a pending reply of this chat already carries the greeting
    chat_reply_times: tuple[datetime, ...] = ()  # sent or scheduled replies, for rate limits
    account_reply_times: tuple[datetime, ...] = ()
    pending_since: datetime | None = None  # first message of a batch whose reply is pending
    # The first owner message of the takeover that paused the chat (None: no takeover, or the
    # pause is the owner's own: API pause, escalation).
    takeover_since: datetime | None = None
    # The owner's last activity on the account (any chat, any device: messages, reads, online
    # status; online right now = `now`): "only if offline" away messages.
    owner_active_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    enabled: bool = True
    recipients: RecipientRules = field(default_factory=RecipientRules)
    hours: WorkingHours = field(default_factory=WorkingHours.always_open)
    outside_hours_mode: OutsideHoursMode = OutsideHoursMode.DEFER
    away: AwayRule = field(default_factory=AwayRule)  # [schedule] away: when it is sent
    away_repeat_hours: float = 12.0
    takeover_minutes: float = 30.0
    takeover_max_minutes: float = 0.0  # the whole takeover from its first owner message; 0 = no cap
    takeover_resume: TakeoverResume = TakeoverResume.ANSWER
    grace_minutes: float = 0.0  # answer only if the owner has not within this many minutes
    rate_limits: RateLimits = field(default_factory=RateLimits)
    debounce_s: float = 20.0
    debounce_max_s: float = 120.0
    humanize: HumanizeConfig = field(default_factory=HumanizeConfig)
    greeting_after_days: float = 0.0
    max_voice_s: float = 0.0  # longer voice/audio notes are not transcribed nor answered; 0 = any
    off_reason: str | None = None  # the account's mode is off (owner or safety governor): why

    def __post_init__(self) -> None:
        outside = choice(OutsideHoursMode, self.outside_hours_mode, "schedule.outside_hours")
        object.__setattr__(self, "outside_hours_mode", outside)
        resume = choice(TakeoverResume, self.takeover_resume, "twin.takeover_resume")
        object.__setattr__(self, "takeover_resume", resume)
        for name in (
            "away_repeat_hours",
            "takeover_minutes",
            "takeover_max_minutes",
            "grace_minutes",
            "debounce_s",
            "debounce_max_s",
            "greeting_after_days",
            "max_voice_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a finite number >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reply_at: datetime | None  # when the read/answer starts; None when skipping
    skip_reason: SkipReason | None
    greeting: bool
    explain: tuple[str, ...]
    delay: Delay | None = None  # the read delay inside reply_at, for logs
    grace_until: datetime | None = None  # the grace period's end: an owner's read cancels it
    takeover_resume: bool = False  # deferred to the end of the owner's takeover


def takeover_until(now: datetime, takeover_minutes: float) -> datetime | None:
    """How long the twin keeps out of a chat after the owner wrote there; None = not at all."""
    require_aware(now, "now")
    if takeover_minutes <= 0:
        return None
    return now + timedelta(minutes=takeover_minutes)


def owner_took_over(
    owner_active_at: datetime | None,
    newest_message_at: datetime | None,
    *,
    owner_message_id: int | None = None,
    newest_message_id: int | None = None,
) -> bool:
    """Whether the owner wrote in the chat (from another device) after the newest message a
    reply answers: the conversation is theirs, the reply is not sent. Telegram dates have whole
    seconds; within one second the message ids decide (a chat's ids grow with time), and
    without them the owner is taken to have answered."""
    if owner_active_at is None or newest_message_at is None:
        return False
    require_aware(owner_active_at, "owner_active_at")
    require_aware(newest_message_at, "newest_message_at")
    if owner_active_at != newest_message_at:
        return owner_active_at > newest_message_at
    if owner_message_id is None or newest_message_id is None:
        return True
    return owner_message_id > newest_message_id


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def decide(
    policy: AccountPolicy,
    message: IncomingMessage,
    chat: ChatState,
    *,
    now: datetime,
    rng: random.Random,
) -> Decision:
    require_aware(now, "now")
    explain: list[str] = []

    def skip(reason: SkipReason, why: str) -> Decision:
        explain.append(f"skip ({reason}): {why}")
        return Decision(Action.SKIP, None, reason, False, tuple(explain))

    if not policy.enabled:
        return skip(SkipReason.DISABLED, "the twin is disabled for this account")
    if policy.off_reason is not None:
        return skip(SkipReason.ACCOUNT_OFF, policy.off_reason)

    reason = check_recipient(policy.recipients, message, chat_is_new=chat.chat_is_new)
    if reason is not None:
        return skip(reason, recipient_why(policy.recipients, reason))
    explain.append("recipient rules allow this chat")

    resume_at = None  # the end of the owner's takeover, when its messages are answered
    if chat.paused_until is not None and chat.paused_until > now:
        if chat.takeover_since is None:
            return skip(
                SkipReason.PAUSED, f"paused until {_iso(chat.paused_until)} (owner took over)"
            )
        took_over = (
            f"the owner took over at {_iso(chat.takeover_since)}: paused until "
            f"{_iso(chat.paused_until)}"
        )
        if policy.takeover_resume is TakeoverResume.DROP:
            return skip(SkipReason.PAUSED, f"{took_over}; takeover_resume = drop")
        resume_at = chat.paused_until
        explain.append(
            f"{took_over}; takeover_resume = answer: answered when the pause ends, unless the "
            "owner writes again"
        )

    if (
        policy.max_voice_s
        and message.is_audio
        and message.duration is not None
        and message.duration > policy.max_voice_s
    ):
        return skip(
            SkipReason.TOO_LONG_VOICE,
            f"{message.kind} of {message.duration:g} s is over max {policy.max_voice_s:g} s",
        )

    limits = policy.rate_limits
    rate = check_rate(limits, chat.chat_reply_times, chat.account_reply_times, now)
    if rate is SkipReason.RATE_LIMITED_CHAT:
        count = replies_in_window(chat.chat_reply_times, now)
        return skip(
            rate,
            f"{count} replies in this chat in the last hour (limit {limits.per_chat_per_hour})",
        )
    if rate is SkipReason.RATE_LIMITED_ACCOUNT:
        count = replies_in_window(chat.account_reply_times, now)
        return skip(
            rate,
            f"{count} replies on this account in the last hour "
            f"(limit {limits.per_account_per_hour})",
        )

    hours, cfg = policy.hours, policy.humanize
    chat_id = message.chat_id  # a learned read delay may be this contact's own
    local_now = now.astimezone(hours.tz)
    greeted = greeting_line(
        chat.chat_is_new,
        chat.last_incoming_at,
        chat.last_outgoing_at,
        now,
        policy.greeting_after_days,
        greeting_pending=chat.greeting_pending,
    )
    greeting = greeted is not None

    if resume_at is not None:
        start = resume_at
        if not is_open(hours, start):
            opening = next_opening(hours, start)
            if opening is None:
                return skip(
                    SkipReason.OUTSIDE_HOURS,
                    "the pause ends outside working hours and the schedule never opens again",
                )
            explain.append(
                "the pause ends outside working hours: deferred to the next opening "
                f"{_iso(opening.astimezone(hours.tz))}"
            )
            start = opening
        delay = read_delay(
            cfg, rng, now_local=start.astimezone(hours.tz), chat_active=False, chat_id=chat_id
        )
        explain.append(delay.reason)
        reply_at, grace = _grace(policy, message, chat, start + delay.as_timedelta, explain)
        if greeted:
            explain.append(greeted)
        explain.append(f"reply at {_iso(reply_at)}")
        return Decision(
            Action.DEFER, reply_at, None, greeting, tuple(explain), delay, grace, True
        )

    closed = None
    if not is_open(hours, now):
        closed = f"outside working hours ({local_now:%a %H:%M} {hours.timezone})"
    away = check_away(
        policy.away,
        now,
        closed=closed,
        outside_hours_away=policy.outside_hours_mode is OutsideHoursMode.AWAY,
        repeat_hours=policy.away_repeat_hours,
        last_away_at=chat.last_away_at,
        owner_active_at=chat.owner_active_at,
    )
    if away is not None:
        away_skip, why = away
        if away_skip is not None:
            return skip(away_skip, why)
        explain.append(why)
        return Decision(Action.AWAY, now, None, False, tuple(explain))

    if closed is not None:
        if policy.outside_hours_mode is OutsideHoursMode.IGNORE:
            return skip(SkipReason.OUTSIDE_HOURS, f"{closed}; outside_hours = ignore")
        opening = next_opening(hours, now)
        if opening is None:
            return skip(SkipReason.OUTSIDE_HOURS, f"{closed}; the schedule never opens again")
        # By the time hours start the contact's message is old: no active-chat speed-up.
        delay = read_delay(
            cfg, rng, now_local=opening.astimezone(hours.tz), chat_active=False, chat_id=chat_id
        )
        explain.append(
            f"{closed}; deferred to the next opening {_iso(opening.astimezone(hours.tz))}"
        )
        explain.append(delay.reason)
        reply_at, grace = _grace(policy, message, chat, opening + delay.as_timedelta, explain)
        if greeted:
            explain.append(greeted)
        return Decision(Action.DEFER, reply_at, None, greeting, tuple(explain), delay, grace)

    explain.append(f"within working hours ({local_now:%a %H:%M} {hours.timezone})")
    active = is_chat_active(cfg, chat.last_incoming_at, now)
    delay = read_delay(cfg, rng, now_local=local_now, chat_active=active, chat_id=chat_id)
    explain.append(delay.reason)
    first = min(chat.pending_since or now, now)
    deadline = debounce_deadline(first, now, policy.debounce_s, policy.debounce_max_s)
    reply_at = max(deadline, now + delay.as_timedelta)
    if deadline > now:
        explain.append(
            f"debounce: wait for more messages until {_iso(deadline)} "
            f"({policy.debounce_s:g} s quiet, at most {policy.debounce_max_s:g} s "
            f"after {_iso(first)})"
        )
    reply_at, grace = _grace(policy, message, chat, reply_at, explain)
    if greeted:
        explain.append(greeted)
    explain.append(f"reply at {_iso(reply_at)}")
    return Decision(Action.REPLY, reply_at, None, greeting, tuple(explain), delay, grace)


def _grace(
    policy: AccountPolicy,
    message: IncomingMessage,
    chat: ChatState,
    reply_at: datetime,
    explain: list[str],
) -> tuple[datetime, datetime | None]:
    """`reply_at` held back by the grace period (counted from the first unanswered message of
    the batch), and the grace period's end (None without one)."""
    first = min(chat.pending_since or message.date, message.date)
    grace = grace_until(first, policy.grace_minutes)
    if grace is None:
        return reply_at, None
    explain.append(
        f"grace period: answered only if the owner neither writes nor reads the chat within "
        f"{policy.grace_minutes:g} min of {_iso(first)}: not before {_iso(grace)}"
    )
    if reply_at >= grace:
        return reply_at, grace
    # Held by the grace period past closing time: to the next opening, never outside hours.
    if not is_open(policy.hours, grace):
        opening = next_opening(policy.hours, grace)
        if opening is not None:
            explain.append(
                "the grace period ends outside working hours: held to the next opening "
                f"{_iso(opening.astimezone(policy.hours.tz))}"
            )
            return opening, grace
    return grace, grace
