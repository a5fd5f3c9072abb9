"""Effective behaviour settings: config.toml defaults + per-account `PUT /settings` overrides
+ per-chat overrides, turned into the pure domain's AccountPolicy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twin.config import HumanizeSettings, ScheduleSettings, Settings, TwinSettings
from twin.domain.conversation import Persona
from twin.domain.decide import AccountPolicy
from twin.domain.policies.away import AwayRule
from twin.domain.policies.delays import HumanizeConfig
from twin.domain.policies.rate_limits import RateLimits
from twin.domain.policies.recipients import RecipientRules
from twin.domain.policies.working_hours import WorkingHours

# The sections an account (PUT /settings) or a chat (overrides) may change.
OVERRIDABLE = {"twin": TwinSettings, "schedule": ScheduleSettings, "humanize": HumanizeSettings}


@dataclass(frozen=True)
class Behaviour:
    twin: TwinSettings
    schedule: ScheduleSettings
    humanize: HumanizeSettings


def merge_behaviour(base: Behaviour, overrides: Mapping[str, Any] | None) -> Behaviour:
    """Apply `{"twin": {...}, "schedule": {...}, "humanize": {...}}`; pydantic validates each
    section again, so an invalid override raises ValidationError naming the field."""
    if not overrides:
        return base
    sections = {}
    for name, model in OVERRIDABLE.items():
        current = getattr(base, name)
        patch = overrides.get(name)
        sections[name] = (
            model.model_validate({**current.model_dump(), **patch}) if patch else current
        )
    return Behaviour(**sections)


def behaviour_of(settings: Settings, *layers: Mapping[str, Any] | None) -> Behaviour:
    result = Behaviour(settings.twin, settings.schedule, settings.humanize)
    for layer in layers:
        result = merge_behaviour(result, layer)
    return result


def persona_of(twin: TwinSettings) -> Persona:
    """Who the twin speaks for, as the brain is given it."""
    return Persona(
        owner_name=twin.owner_name or "the owner",
        facts=tuple(twin.facts),
        boundaries=tuple(twin.boundaries),
        disclose_assistant=twin.disclose_assistant,
        language=twin.language,
        instructions=twin.persona,
    )


def humanize_config(humanize: HumanizeSettings) -> HumanizeConfig:
    if not humanize.enabled:
        return HumanizeConfig.instant()
    return HumanizeConfig(**humanize.model_dump(exclude={"enabled"}))


def working_hours(schedule: ScheduleSettings) -> WorkingHours:
    return WorkingHours.from_config(
        schedule.timezone, schedule.hours, [(span.start, span.end) for span in schedule.closed]
    )


def away_rule(schedule: ScheduleSettings) -> AwayRule:
    span = schedule.away_span()
    return AwayRule(
        mode=schedule.away,  # AwayRule converts the validated string
        start=span[0] if span else None,
        end=span[1] if span else None,
        offline_only=schedule.away_only_if_offline,
        offline_minutes=schedule.away_offline_minutes,
    )


def account_policy(behaviour: Behaviour) -> AccountPolicy:
    twin, schedule = behaviour.twin, behaviour.schedule
    return AccountPolicy(
        enabled=twin.enabled and twin.mode != "off",
        recipients=RecipientRules(
            existing_chats=twin.existing_chats,
            new_chats=twin.new_chats,
            contacts=twin.contacts,
            non_contacts=twin.non_contacts,
            include=twin.include,
            exclude=twin.exclude,
            groups_when_mentioned=twin.groups_when_mentioned,
            exclude_selected=twin.exclude_selected,
        ),
        hours=working_hours(schedule),
        outside_hours_mode=schedule.outside_hours,
        away=away_rule(schedule),
        away_repeat_hours=schedule.away_repeat_hours,
        takeover_minutes=twin.takeover_minutes,
        takeover_max_minutes=twin.takeover_max_minutes,
        takeover_resume=twin.takeover_resume,
        grace_minutes=twin.grace_minutes,
        rate_limits=RateLimits(
            per_chat_per_hour=twin.max_replies_per_chat_per_hour,
            per_account_per_hour=twin.max_replies_per_account_per_hour,
        ),
        debounce_s=twin.debounce_seconds,
        debounce_max_s=twin.debounce_max_seconds,
        humanize=humanize_config(behaviour.humanize),
        greeting_after_days=twin.greeting_after_days,
        max_voice_s=twin.max_voice_seconds,
    )
