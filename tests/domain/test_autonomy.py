"""Earned autonomy's rule (twin.domain.autonomy): pure, the owner's decisions as kinds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.autonomy import AutonomyRule, demotion, kept, promotion

RULE = AutonomyRule(min_drafts=10, approval=0.9, heavy_edit=0.5)


def test_enough_unchanged_drafts_earn_auto() -> None:
    assert promotion(["approved"] * 9, RULE) is None  # too few yet
    reason = promotion(["approved"] * 9 + ["edited"], RULE)
    assert reason == "9 of the last 10 drafts were sent unchanged (90%, at least 90% needed)"
    assert promotion(["approved"] * 8 + ["skipped", "edited"], RULE) is None  # 80%
    # Only the newest count: old edits fall out of the window.
    assert promotion(["approved"] * 10 + ["edited"] * 30, RULE) is not None


def test_counting_restarts_after_the_owner_stepped_into_an_auto_reply() -> None:
    kinds = ["approved"] * 5 + ["phone_deleted"] + ["approved"] * 20
    assert promotion(kinds, RULE) is None
    assert promotion(["approved"] * 10 + ["phone_edited"], RULE) is not None


def test_a_deletion_or_a_rewrite_sends_the_chat_back_to_draft() -> None:
    assert demotion("phone_deleted", "On my way", None, RULE) == "the owner deleted an auto reply"
    typo = demotion("phone_edited", "We open at 10 tomorow", "We open at 10 tomorrow", RULE)
    assert typo is None  # a small fix keeps the chat in auto
    rewrite = demotion("phone_edited", "We open at 10.", "Closed tomorrow, sorry!", RULE)
    assert rewrite is not None and rewrite.startswith("the owner rewrote an auto reply")
    assert demotion("approved", "x", "x", RULE) is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_kept_is_a_share(a: str, b: str) -> None:
    share = kept(a, b)
    assert 0.0 <= share <= 1.0
    assert kept(a, a) == 1.0 or not a


def test_the_rule_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        AutonomyRule(min_drafts=0)
    with pytest.raises(ValueError):
        AutonomyRule(approval=0)
