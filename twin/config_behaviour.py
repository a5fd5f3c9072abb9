"""The behaviour sections of the configuration — `[twin]`, `[schedule]`, `[humanize]`: who is
answered and how, when, and at what human pace. These are the sections an account's stored
overrides may change (PUT /settings), so they are validated the same way in both places.
twin.config assembles them into `Settings` (and re-exports them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.config_sources import ONE_ITEM_PER_VALUE


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TwinSettings(Section):
    enabled: bool = True
    # copilot: auto answers; draft writes each reply for the owner to send, edit or skip
    # (twin.services.drafts); off answers nothing — per account and chat like the others
    mode: Literal["auto", "draft", "off"] = "auto"
    draft_expiry_minutes: float = Field(
        60.0, ge=0, description="a draft nobody decides expires after this; 0 = never"
    )
    draft_after_expiry: Literal["skip", "send"] = "skip"
    # where the owner sees a draft besides GET /drafts: "auto" = from a connected bot of the
    # twin's with Send / Edit / Skip buttons when there is one (and it can reach the owner),
    # else as "saved"; "saved" = a note in their Saved Messages, answered with +, - or the
    # text to send instead; "none"
    draft_notify: Literal["auto", "saved", "none"] = "auto"
    # earned autonomy (twin.domain.autonomy), opt-in: a chat in draft mode moves to auto when
    # `autonomy_approval` of its last `autonomy_min_drafts` drafts went out unchanged, and back
    # to draft when the owner deletes an auto reply or rewrites it (keeping less than
    # `autonomy_heavy_edit` of it)
    autonomy: bool = False
    # whose corrections teach a chat's answers (twin.services.corrections): the chat's own, or
    # the whole account's (what one contact said may then reach another's prompt)
    corrections_scope: Literal["chat", "account"] = "chat"
    # the owner writing in a chat within this many minutes of the twin's sent reply, before
    # the contact answered, is a correction too ("followed_up": the twin's text + the
    # owner's); 0 = not recorded
    followup_minutes: float = Field(5.0, ge=0, le=1440)
    autonomy_min_drafts: int = Field(20, ge=1, le=1000)
    autonomy_approval: float = Field(0.9, gt=0, le=1)
    autonomy_heavy_edit: float = Field(0.5, ge=0, le=1)
    owner_name: str = ""
    persona: str = ""
    # Prose may contain commas: from the environment one value is one item (JSON for several).
    facts: Annotated[list[str], ONE_ITEM_PER_VALUE] = Field(default_factory=list)
    boundaries: Annotated[list[str], ONE_ITEM_PER_VALUE] = Field(
        default_factory=lambda: [
            "Never agree to payments, transfers or meetings; say you will get back to them.",
        ]
    )
    disclose_assistant: bool = False
    language: str | None = None
    # recipients (Telegram Business chatbot semantics)
    existing_chats: bool = True
    new_chats: bool = True
    contacts: bool = True
    non_contacts: bool = True
    include: list[int | str] = Field(default_factory=list)  # chat ids or @usernames
    exclude: list[int | str] = Field(default_factory=list)
    groups_when_mentioned: bool = True
    # Telegram's "All chats except…": the four flags above then pick the chats left out
    exclude_selected: bool = False
    # owner first
    takeover_minutes: float = Field(30.0, ge=0)
    takeover_max_minutes: float = Field(
        180.0, ge=0, description="cap on a whole takeover from its first owner message; 0 = none"
    )
    takeover_resume: Literal["answer", "drop"] = "answer"
    grace_minutes: float = Field(
        0.0, ge=0, description="answer only if the owner has not written or read within this"
    )
    # owner commands typed in any chat from another device (twin.domain.commands)
    command_prefix: str = Field(".twin", description="one word, e.g. .twin; empty = no commands")
    # rate limits and debounce
    max_replies_per_chat_per_hour: int = Field(20, ge=1)
    max_replies_per_account_per_hour: int = Field(200, ge=1)
    debounce_seconds: float = Field(20.0, ge=0)
    debounce_max_seconds: float = Field(120.0, ge=0)
    max_attempts: int = Field(5, ge=1)
    retry_base_seconds: float = Field(5.0, ge=0)
    retry_max_seconds: float = Field(600.0, ge=0)
    # greetings
    greeting: str = ""
    greeting_after_days: float = Field(0.0, ge=0)
    # voice
    voice_replies: Literal["never", "mirror", "always"] = "never"
    voice_max_chars: int = Field(500, ge=1)
    max_voice_seconds: float = Field(0.0, ge=0, description="0 = answer voice notes of any length")
    # a question about the owner's business the knowledge base cannot answer: "escalate" (say
    # you will check, and hand over to the owner) or "general" (answer from general knowledge,
    # never inventing the owner's specifics)
    knowledge_gaps: Literal["escalate", "general"] = "general"

    @field_validator("include", "exclude")
    @classmethod
    def _recipients(cls, value: list[int | str], info: Any) -> list[int | str]:
        from twin.domain.policies.recipients import normalize_recipient

        for entry in value:
            normalize_recipient(entry, field_name=f"twin.{info.field_name}")
        return value

    @field_validator("command_prefix")
    @classmethod
    def _one_word(cls, value: str) -> str:
        if value != "".join(value.split()):
            raise ValueError('one word without spaces, e.g. ".twin" (empty: no commands)')
        return value

    @model_validator(mode="after")
    def _left_out(self) -> TwinSettings:
        if self.exclude_selected and all(
            (self.existing_chats, self.new_chats, self.contacts, self.non_contacts)
        ):
            raise ValueError(
                "twin.exclude_selected = true leaves out the categories set to true, and all "
                "four are: no chat would be answered. Set to true only those to leave out "
                "(e.g. contacts = true, existing_chats = new_chats = non_contacts = false)"
            )
        return self


class ClosedSpan(Section):
    start: str
    end: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        # "2026-12-24" (that whole day) or "start/end" (an ISO 8601 interval): one item of
        # TWIN_SCHEDULE__CLOSED=2026-12-24/2027-01-02,2027-05-01
        if isinstance(value, str):
            start, _, end = value.partition("/")
            return {"start": start.strip(), "end": (end or start).strip()}
        return value


class ScheduleSettings(Section):
    timezone: str = "UTC"
    hours: dict[str, list[str]] = Field(
        default_factory=lambda: {
            day: ["08:00-23:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        }
    )
    closed: list[ClosedSpan] = Field(default_factory=list)
    outside_hours: Literal["ignore", "away", "defer"] = "defer"
    away_message: str = "I'm away right now and will reply when I'm back."
    away_generate: bool = False
    away_repeat_hours: float = Field(12.0, ge=0)
    # when the away message is sent (Telegram Business): off (outside_hours decides) | always |
    # outside_hours | custom (away_start .. away_end, ISO dates/datetimes, naive = timezone)
    away: Literal["off", "always", "outside_hours", "custom"] = "off"
    away_start: str = ""
    away_end: str = ""
    away_only_if_offline: bool = False  # not while the owner was active in the last N minutes
    away_offline_minutes: float = Field(10.0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone '{value}'") from None
        return value

    @model_validator(mode="after")
    def _hours_parse(self) -> ScheduleSettings:
        from twin.domain.policies.working_hours import WorkingHours

        WorkingHours.from_config(
            self.timezone, self.hours, [(span.start, span.end) for span in self.closed]
        )
        self.away_span()
        return self

    def away_span(self) -> tuple[datetime, datetime] | None:
        """`away_start`/`away_end` as a [start, end) UTC span; None when neither is set.
        Raises ValueError naming the key (both are needed with away = "custom")."""
        from twin.domain.policies.working_hours import parse_span

        start, end = self.away_start.strip(), self.away_end.strip()
        if not (start or end):
            if self.away == "custom":
                raise ValueError("schedule.away_start: needed with away = 'custom' (and away_end)")
            return None
        for key, value in (("away_start", start), ("away_end", end)):
            if not value:
                raise ValueError(f"schedule.{key}: needed when the other end of the range is set")
        return parse_span(
            start,
            end,
            self.timezone,
            start_key="schedule.away_start",
            end_key="schedule.away_end",
        )


class HumanizeSettings(Section):
    enabled: bool = True
    read_delay_median: float = Field(8.0, ge=0)
    read_delay_sigma: float = Field(0.6, ge=0)
    read_delay_min: float = Field(1.0, ge=0)
    read_delay_max: float = Field(90.0, ge=0)
    active_chat_minutes: float = Field(5.0, ge=0)
    active_chat_factor: float = Field(0.3, ge=0)
    night_start: str = "23:00"
    night_end: str = "07:00"
    night_factor: float = Field(2.0, ge=0)
    typing_cps: float = Field(6.0, ge=0)
    typing_jitter: float = Field(0.2, ge=0, le=1)
    typing_min: float = Field(1.0, ge=0)
    typing_max: float = Field(25.0, ge=0)
    recording_cps: float = Field(14.0, ge=0)
    recording_max: float = Field(60.0, ge=0)
    bubble_max_chars: int = Field(600, ge=20, le=4096)
    bubble_pause: float = Field(1.5, ge=0)
    learned: bool = Field(
        False,
        description="draw the read delay from the owner's reply latency measured by "
        "`twin style build` (clamped by read_delay_min/max) and type at their measured speed",
    )

    @model_validator(mode="after")
    def _consistent(self) -> HumanizeSettings:
        from twin.domain.policies.delays import HumanizeConfig

        HumanizeConfig(**self.model_dump(exclude={"enabled"}))
        return self
