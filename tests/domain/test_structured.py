"""The tolerant parser of the model's structured reply."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.structured import REPLY_JSON_SCHEMA, BrainReply, parse_reply


def test_schema_matches_the_reply_fields() -> None:
    fields = [f.name for f in dataclasses.fields(BrainReply)]
    assert sorted(REPLY_JSON_SCHEMA["required"]) == sorted(fields)
    assert set(REPLY_JSON_SCHEMA["properties"]) == set(fields)
    assert REPLY_JSON_SCHEMA["additionalProperties"] is False  # OpenAI strict mode needs it


def test_valid_json_gives_every_field() -> None:
    raw = json.dumps(
        {
            "text": "давай в 7",
            "requires_human": False,
            "intent": "scheduling",
            "confidence": 0.82,
            "end_conversation": True,
        },
        ensure_ascii=False,
    )
    assert parse_reply(raw) == BrainReply("давай в 7", False, "scheduling", 0.82, True)


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(1.7, 1.0), (-3, 0.0), ("0.25", 0.25), ("80%", 0.8), ("high", 0.5), (None, 0.5), (True, 1.0)],
)
def test_confidence_is_coerced_and_clamped(confidence: object, expected: float) -> None:
    reply = parse_reply(json.dumps({"text": "ok", "confidence": confidence}))
    assert reply.confidence == expected


def test_types_are_coerced() -> None:
    raw = json.dumps(
        {
            "text": ["first line", "second line"],
            "requires_human": "yes",
            "intent": "  Question ",
            "end_conversation": 0,
        }
    )
    reply = parse_reply(raw)
    assert reply.text == "first line\nsecond line"
    assert reply.requires_human is True
    assert reply.intent == "question"
    assert reply.end_conversation is False


def test_json_in_a_code_fence() -> None:
    raw = 'Here you go:\n```json\n{"text": "hi!", "intent": "greeting", "confidence": 0.9}\n```'
    reply = parse_reply(raw)
    assert (reply.text, reply.intent, reply.confidence) == ("hi!", "greeting", 0.9)


def test_json_after_leading_prose() -> None:
    raw = 'Sure. {"text": "see you", "requires_human": false, "end_conversation": true} hope ok'
    reply = parse_reply(raw)
    assert reply.text == "see you"
    assert reply.end_conversation is True


def test_truncated_json_keeps_the_text_written_so_far() -> None:
    raw = '{"requires_human": false, "intent": "smalltalk", "text": "Привет! Я сейчас за ру'
    reply = parse_reply(raw)
    assert reply.text == "Привет! Я сейчас за ру"
    assert reply.intent == "smalltalk"
    assert reply.requires_human is False


def test_truncated_json_with_escapes() -> None:
    raw = '{"text": "line one\\nline \\"two\\" \\u00e9\\ud83d\\ude00 and thr'
    assert parse_reply(raw).text == 'line one\nline "two" é😀 and thr'


def test_plain_text_is_the_reply_with_neutral_flags() -> None:
    reply = parse_reply("  ну давай завтра)  ")
    assert reply == BrainReply("ну давай завтра)", False, "unknown", 0.5, False)


@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_empty_output_needs_a_human(raw: str) -> None:
    reply = parse_reply(raw)
    assert reply.text == ""
    assert reply.requires_human is True


@pytest.mark.parametrize(
    "raw", ['{"intent": "question"}', "{ this is not json", '```json\n{"confidence": 1}\n```']
)
def test_unreadable_structured_output_is_never_sent_as_text(raw: str) -> None:
    reply = parse_reply(raw)
    assert reply.text == ""
    assert reply.requires_human is True


def test_alternative_text_keys_are_accepted() -> None:
    assert parse_reply('{"reply": "ok then"}').text == "ok then"
    assert parse_reply('{"message": "ok then"}').text == "ok then"


def test_a_json_string_is_plain_text() -> None:
    assert parse_reply('"just text"').text == "just text"


@given(st.text())
def test_parse_reply_never_raises_on_any_text(raw: str) -> None:
    reply = parse_reply(raw)
    assert isinstance(reply, BrainReply)
    assert 0.0 <= reply.confidence <= 1.0
    assert isinstance(reply.text, str)
    assert reply.requires_human or reply.text


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=5)
    ),
    max_leaves=20,
)
reply_like = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values,
        "requires_human": json_values,
        "intent": json_values,
        "confidence": json_values,
        "end_conversation": json_values,
    },
)


@given(
    reply_like, st.integers(min_value=0, max_value=400), st.sampled_from(["", "```json\n", "ok: "])
)
def test_parse_reply_never_raises_on_mangled_json(obj: dict, cut: int, prefix: str) -> None:
    raw = prefix + json.dumps(obj)
    for candidate in (raw, raw[:cut]):
        reply = parse_reply(candidate)
        assert 0.0 <= reply.confidence <= 1.0
        assert reply.requires_human or reply.text


@given(
    st.builds(
        BrainReply,
        text=st.text(min_size=1).map(str.strip).filter(bool),
        requires_human=st.booleans(),
        intent=st.sampled_from(["greeting", "question", "unknown"]),
        confidence=st.floats(min_value=0, max_value=1),
        end_conversation=st.booleans(),
    )
)
def test_round_trip_of_a_well_formed_reply(reply: BrainReply) -> None:
    assert parse_reply(json.dumps(dataclasses.asdict(reply))) == reply
