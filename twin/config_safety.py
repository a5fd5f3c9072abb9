"""`[safety]`: the safety governor of every Telegram account (twin.domain.safety) — call rates
per category, the daily send budget, first contacts, and what Telegram's warnings trigger."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from twin.config_behaviour import Section


class SafetySettings(Section):
    # token buckets per category of Telegram call: tokens per hour, and how many may be saved up
    sends_per_hour: float = Field(300.0, gt=0, description="messages, media, forwards")
    sends_burst: int = Field(10, ge=1)
    resolves_per_hour: float = Field(8.0, gt=0, description="username / phone resolution")
    resolves_burst: int = Field(4, ge=1)
    dialogs_per_hour: float = Field(120.0, gt=0, description="dialog list requests")
    dialogs_burst: int = Field(5, ge=1)
    history_per_hour: float = Field(1200.0, gt=0, description="history / message reads")
    history_burst: int = Field(30, ge=1)
    uploads_per_hour: float = Field(600.0, gt=0, description="file parts (voice notes)")
    uploads_burst: int = Field(20, ge=1)
    max_wait_seconds: float = Field(
        10.0, ge=0, description="a call waits this long for its turn at most, else retries later"
    )
    # budgets, in any 24 h
    daily_sends: int = Field(500, ge=0, description="messages the account sends (0 = no limit)")
    first_contacts_daily: int = Field(
        5, ge=0, description="POST /send_message to someone new, with allow_first_contact"
    )
    # Telegram's warnings
    flood_waits_per_hour: int = Field(
        3, ge=0, description="this many FLOOD_WAITs in an hour trip the governor (0 = never)"
    )
    # what a trip switches the account to, until the owner turns it back on
    on_trip: Literal["draft", "off"] = "draft"
