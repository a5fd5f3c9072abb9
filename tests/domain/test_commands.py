"""Owner commands' parser (twin.domain.commands): pure, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.commands import (
    MAX_PAUSE_MINUTES,
    Verb,
    ack_random_id,
    duration_text,
    parse,
    parse_duration,
)

PREFIX = ".twin"


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        (".twin off", Verb.OFF),
        (".twin on", Verb.ON),
        (".twin draft", Verb.DRAFT),
        (".TWIN OFF", Verb.OFF),
        ("  .twin   On  ", Verb.ON),
        (".twin\ndraft", Verb.DRAFT),
        (".twin resume", Verb.RESUME),
        (".twin status", Verb.STATUS),
        (".twin help", Verb.HELP),
        (".twin", Verb.HELP),
    ],
)
def test_verbs_are_case_insensitive_and_tolerate_spaces(text: str, verb: Verb) -> None:
    command = parse(text, PREFIX)
    assert command is not None and command.verb is verb and command.minutes is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        (".twin pause 2h", 120),
        (".twin pause 30m", 30),
        (".twin pause 1d", 1440),
        (".twin pause 90", 90),
        (".twin pause 1h30m", 90),
        (".twin pause 1h 30m", 90),
        (".twin pause 2 hours", 120),
        (".twin PAUSE 1.5H", 90),
        (".twin pause", None),  # until resumed
    ],
)
def test_pause_durations(text: str, minutes: float | None) -> None:
    command = parse(text, PREFIX)
    assert command is not None and command.verb is Verb.PAUSE
    assert command.minutes == minutes


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (".twin of", "unknown command 'of'"),
        (".twin invalid", "unknown command 'invalid'"),
        (".twin off now", "'off' takes nothing after it"),
        (".twin pause soon", "not a duration"),
        (".twin pause 2w", "'w' is not a unit"),
        (".twin pause 1h30", "give each number a unit"),
        (".twin pause -5", "not a duration"),
        (".twin pause 0", "longer than 0 minutes"),
        (".twin pause 31d", "at most 30 days"),
    ],
)
def test_what_is_not_understood_is_an_invalid_command_saying_why(text: str, problem: str) -> None:
    command = parse(text, PREFIX)
    assert command is not None and command.verb is Verb.INVALID
    assert problem in command.problem


@pytest.mark.parametrize(
    "text", ["hello", ".twinkle on", "twin off", "say .twin off", "", "   ", ". twin off"]
)
def test_other_messages_are_not_commands(text: str) -> None:
    assert parse(text, PREFIX) is None


def test_an_empty_prefix_turns_commands_off() -> None:
    assert parse(".twin off", "") is None
    assert parse("off", "") is None
    assert parse("!tw off", "!tw").verb is Verb.OFF  # type: ignore[union-attr]


@given(st.text(max_size=40))
def test_any_text_without_the_prefix_word_is_not_a_command(text: str) -> None:
    words = text.split()
    command = parse(text, PREFIX)
    assert (command is None) == (not words or words[0].lower() != PREFIX)


@given(st.text(alphabet=" \t\nabcdefghimnopstuvwxyz0123456789.-", max_size=30))
def test_every_command_is_parsed_to_a_verb_without_raising(rest: str) -> None:
    command = parse(f"{PREFIX} {rest}", PREFIX)
    assert command is not None
    if command.verb is Verb.PAUSE and command.minutes is not None:
        assert 0 < command.minutes <= MAX_PAUSE_MINUTES
    assert (command.verb is Verb.INVALID) == bool(command.problem)


@given(
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=23),
    st.integers(min_value=0, max_value=59),
)
def test_durations_add_up_their_parts(days: int, hours: int, minutes: int) -> None:
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    total = days * 1440 + hours * 60 + minutes
    result = parse_duration(text) if text else None
    if total == 0:
        assert result is None
    elif total > MAX_PAUSE_MINUTES:
        assert isinstance(result, str)
    else:
        assert result == total
        assert parse_duration(str(total)) == total  # a bare number is minutes


def test_the_acknowledgement_id_is_the_commands_own() -> None:
    first = ack_random_id("default", 1000002, 17)
    assert first == ack_random_id("default", 1000002, 17)  # delivered again: the same id
    others = {
        ack_random_id("default", 1000002, 18),
        ack_random_id("default", 1000003, 17),
        ack_random_id("work", 1000002, 17),
    }
    assert first not in others and len(others) == 3
    assert all(-(2**63) <= i < 2**63 and i != 0 for i in {first, *others})


def test_durations_read_as_a_person_would() -> None:
    assert duration_text(90) == "1 h 30 min"
    assert duration_text(2880) == "2 d"
    assert duration_text(60) == "1 h"
