"""What the safety governor's repository takes and hands out (no SQLAlchemy here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twin.db.records import _Record
from twin.domain.safety import AccountMode

__all__ = ["AccountModeRecord", "SafetyEventRecord"]


@dataclass(frozen=True, slots=True)
class AccountModeRecord(_Record):
    account_id: int
    mode: AccountMode
    reason: str
    set_by: str  # "owner" (API, CLI, an owner command) or "governor"
    changed_at: datetime
    notify_random_id: int | None
    notified: bool

    _enums = {"mode": AccountMode}


@dataclass(frozen=True, slots=True)
class SafetyEventRecord(_Record):
    kind: str  # flood_wait | spam_limit | first_contact | mode
    category: str | None
    seconds: float | None
    detail: str
    at: datetime
