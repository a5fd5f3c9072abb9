"""The brain's structured reply and a tolerant parser for whatever the model actually returned.

Providers are asked for JSON matching `REPLY_JSON_SCHEMA`, but models (and OpenAI-compatible
servers without schema support) still return fenced JSON, JSON after a sentence of prose,
truncated JSON when they hit the output limit, or plain text. `parse_reply` turns all of these
into a `BrainReply` and never raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INTENTS",
    "REPLY_JSON_SCHEMA",
    "BrainReply",
    "parse_reply",
    "reply_from_mapping",
]

INTENTS = (
    "greeting",
    "smalltalk",
    "question",
    "request",
    "scheduling",
    "emotional",
    "farewell",
    "spam",
    "unknown",
)

NEUTRAL_CONFIDENCE = 0.5
_MAX_INTENT_LEN = 64


@dataclass(frozen=True, slots=True)
class BrainReply:
    """What the owner would send next, plus the model's own judgement of the situation.

    `requires_human` asks the owner to answer personally (sensitive topic, a decision only the
    owner can make, a direct question whether this is a bot, or nothing usable came back).
    """

    text: str
    requires_human: bool = False
    intent: str = "unknown"
    confidence: float = NEUTRAL_CONFIDENCE
    end_conversation: bool = False
    sources: tuple[str, ...] = ()  # labels of the reference passages the model says it used


REPLY_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {
            "type": "string",
            "description": "The message to send to the contact, written as the owner would.",
        },
        "requires_human": {
            "type": "boolean",
            "description": "True if the owner must answer personally instead.",
        },
        "intent": {
            "type": "string",
            "description": "What the contact wants: one of " + ", ".join(INTENTS) + ".",
        },
        "confidence": {
            "type": "number",
            "description": "0..1: how sure you are the owner would send exactly this.",
        },
        "end_conversation": {
            "type": "boolean",
            "description": "True if the conversation has naturally ended.",
        },
        "sources": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ids of the reference passages the answer used (e.g. K1), or none.",
        },
    },
    "required": ["text", "requires_human", "intent", "confidence", "end_conversation", "sources"],
    "additionalProperties": False,
}

_TEXT_KEYS = ("text", "reply", "message", "response", "answer", "content")
_TRUE = {"true", "yes", "y", "1", "on", "да"}
_FALSE = {"false", "no", "n", "0", "off", "нет", "", "null", "none"}


def _coerce_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if not (isinstance(value, float) and math.isnan(value)) else default
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return default


def _coerce_confidence(value: Any) -> float:
    number: float
    if isinstance(value, bool):
        number = 1.0 if value else 0.0
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        raw = value.strip().rstrip("%")
        try:
            number = float(raw)
        except ValueError:
            return NEUTRAL_CONFIDENCE
        if value.strip().endswith("%"):
            number /= 100.0
    else:
        return NEUTRAL_CONFIDENCE
    if math.isnan(number):
        return NEUTRAL_CONFIDENCE
    return min(1.0, max(0.0, number))


def _coerce_intent(value: Any) -> str:
    if not isinstance(value, str):
        return "unknown"
    intent = " ".join(value.strip().lower().split())[:_MAX_INTENT_LEN]
    return intent or "unknown"


def _coerce_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):  # some models return a list of lines/messages
        return "\n".join(_coerce_text(v) for v in value if v is not None).strip()
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


def reply_from_mapping(data: Mapping[str, Any]) -> BrainReply:
    """Build a reply from a decoded JSON object, coercing and clamping every field."""
    text = ""
    for key in _TEXT_KEYS:
        if key in data:
            text = _coerce_text(data[key])
            if text:
                break
    requires_human = _coerce_bool(data.get("requires_human"), False)
    return BrainReply(
        text=text,
        requires_human=requires_human or not text,
        intent=_coerce_intent(data.get("intent")),
        confidence=_coerce_confidence(data.get("confidence", NEUTRAL_CONFIDENCE)),
        end_conversation=_coerce_bool(data.get("end_conversation"), False),
        sources=_coerce_sources(data.get("sources")),
    )


_MAX_SOURCES = 20


def _coerce_sources(value: Any) -> tuple[str, ...]:
    """Passage labels ("K1"), however the model listed them; anything else is dropped."""
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    if not isinstance(value, list):
        return ()
    labels: list[str] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = f"K{item}"
        if isinstance(item, str):
            label = item.strip().strip("[]").upper()
            if re.fullmatch(r"K\d{1,3}", label) and label not in labels:
                labels.append(label)
    return tuple(labels[:_MAX_SOURCES])


_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)(?:```|\Z)", re.DOTALL)
_DECODER = json.JSONDecoder()


def _objects_in(text: str) -> list[dict[str, Any]]:
    """Every JSON object that decodes cleanly starting at some '{' in `text`, in order."""
    found: list[dict[str, Any]] = []
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
            start = text.find("{", end)
        else:  # pragma: no cover - raw_decode at '{' only yields dicts
            start = text.find("{", start + 1)
    return found


def _pick(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    for obj in objects:
        if any(key in obj for key in _TEXT_KEYS):
            return obj
    return None


_STRING_FIELD = r'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)("?)'
_SCALAR_FIELD = r'"{key}"\s*:\s*("?)([A-Za-z0-9_.+\-%]+)'
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"'}


def _unescape(raw: str) -> str:
    """Decode JSON string escapes leniently (a cut-off escape at the end is dropped)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1 : i + 2]
        if nxt == "u":
            digits = raw[i + 2 : i + 6]
            if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                out.append(chr(int(digits, 16)))
            i += 6
            continue
        if nxt:
            out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    text = "".join(out)
    # surrogate pairs from \uD83D\uDE00 escapes
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _salvage(text: str) -> dict[str, Any] | None:
    """Field-by-field regex extraction from truncated or otherwise broken JSON."""
    data: dict[str, Any] = {}
    for key in _TEXT_KEYS:
        match = re.search(_STRING_FIELD.format(key=key), text, re.DOTALL)
        if match:
            data[key] = _unescape(match.group(1))
            break
    for key in ("requires_human", "intent", "confidence", "end_conversation"):
        if key == "intent":
            match = re.search(_STRING_FIELD.format(key=key), text, re.DOTALL)
            if match:
                data[key] = _unescape(match.group(1))
            continue
        match = re.search(_SCALAR_FIELD.format(key=key), text)
        if match:
            data[key] = match.group(2)
    return data or None


def _looks_like_json(text: str) -> bool:
    return text.startswith(("{", "```"))


def parse_reply(raw: str) -> BrainReply:
    """Turn raw model output into a `BrainReply`. Never raises.

    Order: whole text as JSON → JSON inside ``` fences → the first JSON object found after
    leading prose → field salvage from truncated/malformed JSON → the text itself as the reply
    (neutral flags). An empty reply always sets `requires_human`.
    """
    try:
        return _parse(raw)
    except Exception:  # the contract is "never raises on model output"
        return BrainReply(text="", requires_human=True, intent="unknown", confidence=0.0)


def _parse(raw: str) -> BrainReply:
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return BrainReply(text="", requires_human=True, intent="unknown", confidence=0.0)

    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict):
        return reply_from_mapping(value)
    if isinstance(value, str):  # a JSON-encoded string
        return _plain(value)
    if isinstance(value, list):
        picked = _pick([v for v in value if isinstance(v, dict)])
        if picked is not None:
            return reply_from_mapping(picked)

    for block in _FENCE.findall(text):
        picked = _pick(_objects_in(block))
        if picked is not None:
            return reply_from_mapping(picked)

    picked = _pick(_objects_in(text))
    if picked is not None:
        return reply_from_mapping(picked)

    salvaged = _salvage(text)
    if salvaged is not None:
        return reply_from_mapping(salvaged)

    if _looks_like_json(text):
        # structured output we could not read: do not send braces to a person
        return BrainReply(text="", requires_human=True, intent="unknown", confidence=0.0)
    return _plain(text)


def _plain(text: str) -> BrainReply:
    text = text.strip()
    return BrainReply(
        text=text,
        requires_human=not text,
        intent="unknown",
        confidence=NEUTRAL_CONFIDENCE if text else 0.0,
        end_conversation=False,
    )
