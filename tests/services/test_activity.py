"""The log line of each event (twin.services.activity), and the one list of event types.

Pure logic: events are published straight into an EventLog (nothing is stored), and the lines
are read from a capturing handler.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twin.logs import mask_chat
from twin.services.activity import LINES, ActivityLog
from twin.services.events import EVENT_TYPES, EventLog, StagedEvent

TWIN = Path(__file__).resolve().parents[2] / "twin"
PEER = 1234567890
CHAT_ID = 7  # the database's id of that chat
ACCOUNT_ID = 3


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    loggers = [logging.getLogger(name) for name in ("twin.pipeline", "twin.control", "twin.events")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


@pytest.fixture
def events() -> EventLog:
    log = EventLog(store=None)  # type: ignore[arg-type]  # publish() never stores
    ActivityLog(log, {ACCOUNT_ID: "work"}.get)
    return log


def publish(events: EventLog, type_: str, chat_id: int | None = CHAT_ID, **data: Any) -> None:
    events.publish(StagedEvent(len(data) + 1, type_, data, ACCOUNT_ID, chat_id))


def test_the_steps_of_an_answered_message(events: EventLog, captured: Captured) -> None:
    publish(events, "message.received", chat=PEER, message_id=41, kind="text", sender=PEER)
    publish(events, "reply.scheduled", reply=5, message_id=41, action="reply", delay_s=84.2,
            explain=["a", "b"])
    publish(events, "reply.generating", reply=5)
    publish(events, "reply.sending", reply=5, bubbles=2, voice=False)
    publish(events, "bubble.sent", reply=5, index=0, message_id=42, duplicate=False)
    publish(events, "reply.sent", reply=5, bubbles=2)
    chat = mask_chat(PEER)
    assert chat == "******7890"
    assert [(r.levelname, r.getMessage()) for r in captured.records] == [
        ("DEBUG", f"account=work chat={chat} message=41: received (text)"),
        ("INFO", f"account=work chat={chat} reply=5: message 41 received: reply scheduled in "
                 "84 s (a; b)"),
        ("DEBUG", f"account=work chat={chat} reply=5: generating"),
        ("DEBUG", f"account=work chat={chat} reply=5: sending 2 bubbles"),
        ("DEBUG", f"account=work chat={chat} reply=5: bubble 0 sent as message 42"),
        ("INFO", f"account=work chat={chat} reply=5: sent (2 bubbles)"),
    ]
    scheduled = captured.records[1].__dict__
    assert {
        k: scheduled[k] for k in ("event", "account", "chat", "reply", "message_id", "delay_s")
    } == {
        "event": "reply.scheduled",
        "account": "work",
        "chat": chat,
        "reply": 5,
        "message_id": 41,
        "delay_s": 84.2,
    }
    # The raw peer id and the sender never become fields (the JSON format writes every field).
    received = captured.records[0].__dict__
    assert received["chat"] == chat and "sender" not in received


def test_skips_failures_and_retries_say_why(events: EventLog, captured: Captured) -> None:
    events.remember_chat(CHAT_ID, PEER)
    publish(events, "message.skipped", message_id=43, reason="outside_hours", explain=["closed"])
    publish(events, "reply.retry", reply=6, error="ProviderUnavailable",
            reason="ProviderUnavailable: 503 from openai", delay=2.5, attempt=1)
    publish(events, "reply.failed", reply=6, reason="ProviderUnavailable: gave up after 5 "
            "attempts", failure="outage", error="ProviderUnavailable: 503 from openai")
    publish(events, "reply.cancelled", reply=7, reason="paused")
    lines = [(r.levelname, r.getMessage().split(": ", 1)[1]) for r in captured.records]
    assert lines == [
        ("INFO", "received, not answered: outside_hours (closed)"),
        ("WARNING", "ProviderUnavailable: 503 from openai (attempt 1 failed); retrying in 2.5 s"),
        ("WARNING", "failed (outage): ProviderUnavailable: gave up after 5 attempts: "
                    "ProviderUnavailable: 503 from openai"),
        ("INFO", "cancelled: paused"),
    ]
    failed = captured.records[2].__dict__
    assert (failed["failure"], failed["reply"]) == ("outage", 6)
    assert captured.records[1].__dict__["delay_s"] == 2.5


def test_a_chat_not_met_yet_is_named_by_its_row(events: EventLog, captured: Captured) -> None:
    publish(events, "reply.requeued", chat_id=99, reply=8, trigger="probe", state="scheduled",
            failure="outage")
    assert captured.records[0].getMessage() == (
        "account=work chat=#99 reply=8: re-queued (probe) to scheduled (it had failed: outage)"
    )


def test_nothing_is_built_when_the_level_is_off(events: EventLog, captured: Captured) -> None:
    logging.getLogger("twin.pipeline").setLevel(logging.WARNING)
    publish(events, "reply.sent", reply=5, bubbles=1)
    publish(events, "reply.failed", reply=5, reason="x", failure="permanent")
    assert [r.getMessage().split(": ", 1)[1] for r in captured.records] == [
        "failed (permanent): x"
    ]


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_every_type_has_a_line(events: EventLog, captured: Captured, type_: str) -> None:
    publish(events, type_, reply=1, message_id=2, reason="r", bubbles=1, changed=["twin"])
    [record] = captured.records
    assert record.levelno >= logging.DEBUG and record.getMessage()
    assert record.__dict__["event"] == type_


def test_the_list_of_types_is_the_list_of_lines() -> None:
    assert set(LINES) == set(EVENT_TYPES)


def _emitted_types() -> set[str]:
    """Every event type the code names in an emit/stage/stage_reply/_emit/_finish call."""
    calls = {"emit", "stage", "stage_reply", "_emit", "_finish"}
    pattern = re.compile(r"^[a-z_]+\.[a-z_]+$")
    found = set()
    for path in TWIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            if name not in calls:
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and (
                    pattern.match(arg.value)
                ):
                    found.add(arg.value)
    return found


def test_every_emitted_type_is_listed() -> None:
    """A new event type needs its entry in EVENT_TYPES (GET /events?types= accepts it) and a
    log line."""
    emitted = _emitted_types()
    assert {"message.received", "reply.sent", "chat.paused", "reply.expired"} <= emitted
    assert emitted <= set(EVENT_TYPES), emitted - set(EVENT_TYPES)
