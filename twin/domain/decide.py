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

from twin.domain.models import IncomingMessage, SkipReason, require_aware
from twin.domain.policies.away import needs_greeting, should_send_away
from twin.domain.policies.delays import Delay, HumanizeConfig, is_chat_active, read_delay
from twin.domain.policies.rate_limits import (
    RateLimits,
    check_rate,
    debounce_deadline,
    replies_in_window,
)
from twin.domain.policies.recipients import RecipientRules, check_recipient
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
    chat_reply_times: tuple[datetime, ...] = ()  # sent or scheduled replies, for rate limits
    account_reply_times: tuple[datetime, ...] = ()
    pending_since: datetime | None = None  # first message of a batch whose reply is pending


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    enabled: bool = True
    recipients: RecipientRules = field(default_factory=RecipientRules)
    hours: WorkingHours = field(default_factory=WorkingHours.always_open)
    outside_hours_mode: OutsideHoursMode = OutsideHoursMode.DEFER
    away_repeat_hours: float = 12.0
    takeover_minutes: float = 30.0
    rate_limits: RateLimits = field(default_factory=RateLimits)
    debounce_s: float = 20.0
    debounce_max_s: float = 120.0
    humanize: HumanizeConfig = field(default_factory=HumanizeConfig)
    greeting_after_days: float = 0.0
    max_voice_s: float = 0.0  # longer voice/audio notes are not transcribed nor answered; 0 = any

    def __post_init__(self) -> None:
        try:
            mode = OutsideHoursMode(self.outside_hours_mode)
        except ValueError:
            choices = ", ".join(m.value for m in OutsideHoursMode)
            raise ValueError(
                f"schedule.outside_hours: {self.outside_hours_mode!r} is not one of {choices}"
            ) from None
        object.__setattr__(self, "outside_hours_mode", mode)
        for name in (
            "away_repeat_hours",
            "takeover_minutes",
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


_RECIPIENT_WHY = {
    SkipReason.SERVICE: "service message (join, pin, call…): nothing to answer",
    SkipReason.CHANNEL: "channels are never answered",
    SkipReason.SAVED_MESSAGES: "Saved Messages is the owner's own chat",
    SkipReason.OWN_MESSAGE: "the owner's own message",
    SkipReason.BOT: "the sender is a bot",
    SkipReason.EXCLUDED: "chat or sender is on the exclude list",
    SkipReason.GROUPS_DISABLED: "group chats are off (groups_when_mentioned = false)",
    SkipReason.GROUP_NOT_ADDRESSED: "group message that neither mentions nor replies to the owner",
    SkipReason.NOT_INCLUDED: "only included chats are answered and this one is not included",
    SkipReason.CONTACT: "contacts are off (contacts = false)",
    SkipReason.NON_CONTACT: "the sender is not a contact (non_contacts = false)",
    SkipReason.NEW_CHAT: "new chats are off (new_chats = false)",
    SkipReason.EXISTING_CHAT: "existing chats are off (existing_chats = false)",
}


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

    reason = check_recipient(policy.recipients, message, chat_is_new=chat.chat_is_new)
    if reason is not None:
        return skip(reason, _RECIPIENT_WHY.get(reason, str(reason)))
    explain.append("recipient rules allow this chat")

    if chat.paused_until is not None and chat.paused_until > now:
        return skip(SkipReason.PAUSED, f"paused until {_iso(chat.paused_until)} (owner took over)")

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
    local_now = now.astimezone(hours.tz)
    greeting = needs_greeting(
        chat.chat_is_new, chat.last_incoming_at, now, policy.greeting_after_days
    )

    if not is_open(hours, now):
        closed = f"outside working hours ({local_now:%a %H:%M} {hours.timezone})"
        mode = policy.outside_hours_mode
        if mode is OutsideHoursMode.IGNORE:
            return skip(SkipReason.OUTSIDE_HOURS, f"{closed}; outside_hours = ignore")
        if mode is OutsideHoursMode.AWAY:
            if not should_send_away(chat.last_away_at, now, policy.away_repeat_hours):
                assert chat.last_away_at is not None  # should_send_away(None, …) is True
                return skip(
                    SkipReason.AWAY_ALREADY_SENT,
                    f"{closed}; away message already sent at {_iso(chat.last_away_at)} "
                    f"(repeat every {policy.away_repeat_hours:g} h)",
                )
            explain.append(f"{closed}; sending the away message now")
            return Decision(Action.AWAY, now, None, False, tuple(explain))
        opening = next_opening(hours, now)
        if opening is None:
            return skip(SkipReason.OUTSIDE_HOURS, f"{closed}; the schedule never opens again")
        # By the time hours start the contact's message is old: no active-chat speed-up.
        delay = read_delay(cfg, rng, now_local=opening.astimezone(hours.tz), chat_active=False)
        explain.append(
            f"{closed}; deferred to the next opening {_iso(opening.astimezone(hours.tz))}"
        )
        explain.append(delay.reason)
        if greeting:
            explain.append("greeting: new chat or long silence")
        return Decision(
            Action.DEFER, opening + delay.as_timedelta, None, greeting, tuple(explain), delay
        )

    explain.append(f"within working hours ({local_now:%a %H:%M} {hours.timezone})")
    active = is_chat_active(cfg, chat.last_incoming_at, now)
    delay = read_delay(cfg, rng, now_local=local_now, chat_active=active)
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
    if greeting:
        explain.append("greeting: new chat or long silence")
    explain.append(f"reply at {_iso(reply_at)}")
    return Decision(Action.REPLY, reply_at, None, greeting, tuple(explain), delay)
