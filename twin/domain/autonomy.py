"""Earned autonomy (issue 18 §3): a chat in draft mode moves to auto when the owner keeps sending
its drafts unchanged, and back to draft when the owner deletes or rewrites an auto reply.

Pure: the owner's decisions come in as correction kinds, newest first (twin.services.drafts
records `approved`, `edited`, `skipped`; the owner's phone `phone_edited`, `phone_deleted`,
`followed_up`).
Counting restarts at the owner's newest intervention in an auto reply (a `phone_*` kind or
`followed_up`), so a chat
sent back to draft earns its way out again from there."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

DRAFT_KINDS = frozenset({"approved", "edited", "skipped"})
PHONE_KINDS = frozenset({"phone_edited", "phone_deleted", "followed_up"})


@dataclass(frozen=True, slots=True)
class AutonomyRule:
    min_drafts: int = 20  # decided drafts counted (the newest)
    approval: float = 0.9  # the share of them sent unchanged that earns auto
    heavy_edit: float = 0.5  # an edit keeping less of the reply than this is a rewrite

    def __post_init__(self) -> None:
        if self.min_drafts < 1:
            raise ValueError("min_drafts must be at least 1")
        if not 0 < self.approval <= 1 or not 0 <= self.heavy_edit <= 1:
            raise ValueError("approval must be in (0, 1], heavy_edit in [0, 1]")


def kept(twin_text: str, owner_text: str) -> float:
    """How much of the twin's text the owner's version keeps (0..1, character-wise)."""
    return difflib.SequenceMatcher(None, twin_text, owner_text, autojunk=False).ratio()


def promotion(kinds: Sequence[str], rule: AutonomyRule) -> str | None:
    """Why the chat moves from draft to auto (None: not yet), from its corrections' kinds,
    newest first."""
    recent: list[str] = []
    for kind in kinds:
        if kind in PHONE_KINDS:
            break  # counting restarts after the owner stepped into an auto reply
        if kind in DRAFT_KINDS:
            recent.append(kind)
        if len(recent) == rule.min_drafts:
            break
    if len(recent) < rule.min_drafts:
        return None
    approved = recent.count("approved")
    if approved / len(recent) < rule.approval:
        return None
    return (
        f"{approved} of the last {len(recent)} drafts were sent unchanged "
        f"({approved / len(recent):.0%}, at least {rule.approval:.0%} needed)"
    )


def demotion(
    kind: str, twin_text: str, owner_text: str | None, rule: AutonomyRule
) -> str | None:
    """Why an auto chat goes back to draft after the owner's correction (None: it stays)."""
    if kind == "phone_deleted":
        return "the owner deleted an auto reply"
    if kind == "phone_edited" and owner_text is not None:
        share = kept(twin_text, owner_text)
        if share < rule.heavy_edit:
            return f"the owner rewrote an auto reply ({share:.0%} of it kept)"
    return None
