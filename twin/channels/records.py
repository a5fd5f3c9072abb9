"""The records of the channels answered outside Telegram (twin.channels.conversations): what a
channel received, what the plan stored, the answer, and what every such channel is built from."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twin.channels.notify import OwnerNotifier
from twin.db.records import ChatRecord, MessageRecord, ReplyRecord
from twin.ports import Clock, Store, Tx
from twin.services.events import EventLog
from twin.services.pipeline.caches import Behaviours, Styles
from twin.services.pipeline.generate import Generator
from twin.services.pipeline.records import Started

__all__ = ["Also", "Answer", "ChannelParts", "Inbound", "Planned", "peer_of"]


def peer_of(external_id: str) -> int:
    """A conversation's key among its instance's chats: a stable 62-bit number of its id on
    the channel (the chats table addresses conversations by account and number)."""
    digest = hashlib.sha256(external_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 2


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message of a conversation, as its channel received it."""

    thread: str  # the conversation's id on the channel
    text: str
    user_name: str | None = None
    key: int | None = None  # the delivery's identity: stored once (None: every call is new)
    greeting: bool = False  # prepend the twin's greeting to the answer
    # The conversation's current session (a call): a new one gets the greeting and is noted in
    # channel_data (session_id, session_started_at).
    session: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # merged into chats.channel_data


@dataclass(frozen=True, slots=True)
class Planned:
    chat: ChatRecord
    message: MessageRecord
    reply: ReplyRecord | None  # None: nothing to generate (paused, or a repeated delivery)
    repeated: ReplyRecord | None = None  # the answer a repeated delivery already got
    # Read in the plan's own transaction (one round trip less each): the behaviour overrides,
    # and the conversation and style generation reads.
    overrides: dict[str, Any] = field(default_factory=dict)
    started: Started | None = None
    previous: dict[str, Any] = field(default_factory=dict)  # channel_data before this message
    new_session: bool = False
    away: str | None = None  # outside working hours: the away message instead of an answer


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    thread: str
    escalated: bool
    reply_id: int | None
    flags: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)


# Runs inside the transaction that stores an answer: (tx, the job, the answer's message id).
Also = Callable[[Tx, ReplyRecord, "int | None"], object]


@dataclass(frozen=True, slots=True)
class ChannelParts:
    """What every channel answered in its own request is built from (lifecycle.py wires it)."""

    repo: Store
    events: EventLog
    clock: Clock
    behaviours: Behaviours
    styles: Styles
    generator: Generator
    notifier: OwnerNotifier | None = None  # tells the owner of escalations on Telegram
    wake: Callable[[], None] | None = None  # the reply worker: a job is due now
