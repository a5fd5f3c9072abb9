"""The twin at work, in the log: one line per event, i.e. per pipeline step.

Every step of the pipeline already records an event (twin.services.events); `ActivityLog`
listens to them and writes each as one line, so the log and the event log cannot disagree and
no step is logged in two places. A received message that is answered reads (text format):

    INFO    twin.pipeline: account=default chat=***0002 reply=3: message 17 received: reply
            scheduled in 1.4 s (recipient rules allow this chat; within working hours …)
    INFO    twin.pipeline: account=default chat=***0002 reply=3: sent (1 bubble)

(the first on one line). Every received message gets one INFO line, its decision: scheduled,
waiting for more (debounce) or not answered with the reason (`message.skipped`). Cancellations,
re-queues and escalations are INFO, retries and failures WARNING (with the reason and the
failure's kind). The steps in between (received, generating, sending N bubbles, each bubble)
are DEBUG: a line costs ~75 µs of CPU in the busy daemon, and bench/pipeline.py answers a
message in ~4 ms, so every INFO line per reply would cost ~2 % of its throughput.

In `--log-format json` the line's fields are keys: event, event_id, account, chat (masked),
reply, message_id, reason, failure, delay_s and the event's other plain facts. Chats are
masked (twin.logs.mask_chat); no message text, title, username or sender id is ever written.

Cost: nothing is built unless the line's level is enabled; then one dict and one record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twin.logs import mask_chat
from twin.services.events import EventLog, StagedEvent

PIPELINE = logging.getLogger("twin.pipeline")
CONTROL = logging.getLogger("twin.control")

Render = Callable[[Mapping[str, Any]], str]

# Plain facts of an event's data that go into a JSON line as they are (never `chat`: the raw
# peer id; never `sender`, `overrides`: personal or bulky).
_FIELD_SET = frozenset(
    {
        "reply",
        "message_id",
        "reason",
        "failure",
        "error",
        "action",
        "explain",
        "bubbles",
        "voice",
        "index",
        "duplicate",
        "kind",
        "trigger",
        "state",
        "attempt",
        "intent",
        "into",
        "until",
        "minutes",
        "cancelled",
    }
)
_MASKED_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class Line:
    render: Render
    level: int = logging.INFO
    logger: logging.Logger = PIPELINE
    subject: str = "reply"  # which id the line's prefix names: reply, message or none


def _seconds(value: Any) -> str:
    """A delay for a reader: 0.4 s, 12 s, 7.5 min, 9.2 h."""
    if not isinstance(value, int | float):
        return "?"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _explain(data: Mapping[str, Any]) -> str:
    explain = data.get("explain") or ()
    return f" ({'; '.join(map(str, explain))})" if explain else ""


def _bubbles(count: Any) -> str:
    return f"{count} bubble{'' if count == 1 else 's'}"


def _received(d: Mapping[str, Any]) -> str:
    return f"message {d['message_id']} received: " if d.get("message_id") is not None else ""


def _scheduled(d: Mapping[str, Any]) -> str:
    action = d.get("action")
    what = {"reply": "reply", "defer": "reply after hours", "away": "away message"}.get(
        str(action), str(action)
    )
    return f"{_received(d)}{what} scheduled in {_seconds(d.get('delay_s'))}{_explain(d)}"


def _sending(d: Mapping[str, Any]) -> str:
    return f"sending {_bubbles(d.get('bubbles'))}{' as a voice note' if d.get('voice') else ''}"


def _bubble(d: Mapping[str, Any]) -> str:
    if d.get("duplicate"):
        return f"bubble {d.get('index')} had gone out already (Telegram: duplicate)"
    return f"bubble {d.get('index')} sent as message {d.get('message_id')}"


def _failed(d: Mapping[str, Any]) -> str:
    error = d.get("error")
    detail = f": {error}" if error and error != d.get("reason") else ""
    return f"failed ({d.get('failure') or 'permanent'}): {d.get('reason')}{detail}"


def _retry(d: Mapping[str, Any]) -> str:
    attempt = f" (attempt {d['attempt']} failed)" if d.get("attempt") else ""
    why = d.get("reason") or d.get("error")
    return f"{why}{attempt}; retrying in {_seconds(d.get('delay'))}"


def _requeued(d: Mapping[str, Any]) -> str:
    was = f" (it had failed: {d['failure']})" if d.get("failure") else ""
    return f"re-queued ({d.get('trigger')}) to {d.get('state')}{was}"


def _paused(d: Mapping[str, Any]) -> str:
    until = "until resumed" if d.get("minutes") is None else f"until {d.get('until')}"
    if d.get("takeover_since"):
        until = f"{until} (the owner took over at {d['takeover_since']})"
    cancelled = d.get("cancelled")
    if not cancelled:
        return f"paused {until}"
    return f"paused {until}; {cancelled} pending repl{'y' if cancelled == 1 else 'ies'} cancelled"


def _owner_read(d: Mapping[str, Any]) -> str:
    line = f"the owner read the chat from another device (up to message {d.get('max_id')})"
    cancelled = d.get("cancelled")
    if not cancelled:
        return line
    replies = f"{cancelled} repl{'y' if cancelled == 1 else 'ies'}"
    return f"{line}: {replies} in the grace period cancelled"


def _owner_command(d: Mapping[str, Any]) -> str:
    line = f"owner command '{d.get('command')}': {d.get('result')}"
    missed = [what for what in ("deleted", "acknowledged") if d.get(what) is False]
    return line + (f" (not {' nor '.join(missed)})" if missed else "")


LINES: Mapping[str, Line] = {
    # A received message's line is its decision (reply.scheduled / rescheduled, or
    # message.skipped), written in the same transaction: one INFO line per message.
    "message.received": Line(
        lambda d: f"received ({d.get('kind')})", logging.DEBUG, subject="message"
    ),
    "message.recovered": Line(
        lambda d: "stored earlier without a decision: deciding now", subject="message"
    ),
    "message.skipped": Line(
        lambda d: f"received, not answered: {d.get('reason')}{_explain(d)}", subject="message"
    ),
    "message.edited": Line(lambda d: "edited", logging.DEBUG, subject="message"),
    "message.deleted": Line(lambda d: "deleted by the contact", subject="message"),
    "message.sent": Line(lambda d: "sent through the API", subject="message"),
    "owner.activity": Line(
        lambda d: "the owner wrote from another device: the twin steps back", subject="message"
    ),
    "owner.read": Line(_owner_read, subject=""),
    "draft.created": Line(
        lambda d: f"draft {d.get('draft')} written for the owner"
        + (f" (replaces {d.get('superseded')})" if d.get("superseded") else "")
    ),
    "draft.sent": Line(
        lambda d: f"draft {d.get('draft')} sent "
        f"({'edited' if d.get('edited') else d.get('reason')})"
    ),
    "chat.autonomy": Line(
        lambda d: f"now in {d.get('mode')} mode: {d.get('reason')}", logger=CONTROL, subject=""
    ),
    "correction.recorded": Line(
        lambda d: f"the owner {'edited' if d.get('kind') == 'phone_edited' else 'deleted'} "
        "the twin's message on their phone: learned from it"
    ),
    "draft.skipped": Line(lambda d: f"draft {d.get('draft')} skipped by the owner"),
    "draft.expired": Line(lambda d: f"draft {d.get('draft')} expired undecided"),
    "draft.cancelled": Line(
        lambda d: f"drafts {', '.join(map(str, d.get('drafts') or ()))} cancelled: "
        f"{d.get('reason')}",
        subject="",
    ),
    "owner.presence": Line(
        lambda d: f"the owner is {'online' if d.get('online') else 'offline'} ({d.get('at')})",
        logging.DEBUG,
        subject="",
    ),
    "owner.command": Line(_owner_command, subject="message"),
    "reply.scheduled": Line(_scheduled),
    "reply.rescheduled": Line(
        lambda d: (
            f"the chat was resumed: reply in {_seconds(d.get('delay_s'))}"
            if d.get("resumed")
            else f"{_received(d)}waiting for more, reply in {_seconds(d.get('delay_s'))}"
        )
    ),
    "reply.generating": Line(lambda d: "generating", logging.DEBUG),
    "reply.sending": Line(_sending, logging.DEBUG),
    "bubble.sent": Line(_bubble, logging.DEBUG),
    "reply.sent": Line(lambda d: f"sent ({_bubbles(d.get('bubbles'))})"),
    "reply.skipped": Line(
        lambda d: (
            f"skipped: {d.get('reason')}"
            + (f" (answered by reply {d['into']})" if d.get("into") else "")
        )
    ),
    "reply.cancelled": Line(lambda d: f"cancelled: {d.get('reason')}"),
    "reply.failed": Line(_failed, logging.WARNING),
    "reply.retry": Line(_retry, logging.WARNING),
    "reply.escalated": Line(
        lambda d: f"handed to the owner (topic: {d.get('intent') or 'unknown'}); chat paused"
    ),
    "conversation.escalated": Line(
        lambda d: f"thread {d.get('thread')} handed to the owner; paused until resumed"
    ),
    "conversation.deleted": Line(
        lambda d: f"{d.get('channel')} conversation {d.get('thread')} forgotten"
    ),
    "conversation.operator": Line(
        lambda d: f"an operator answered in thread {d.get('thread')}; paused until resumed"
    ),
    "webhook.delivered": Line(
        lambda d: (
            f"webhook {d.get('delivery')} ({d.get('wh_type')}) delivered, "
            f"attempt {d.get('attempts')}"
        ),
        logging.DEBUG,
    ),
    "bot.added": Line(lambda d: f"bot {d.get('bot')} connected, answering as {d.get('twin')}"),
    "webhook.retry": Line(
        lambda d: (
            f"webhook {d.get('delivery')} ({d.get('wh_type')}) failed: {d.get('error')}; "
            f"attempt {int(d.get('attempts') or 0) + 1} in {_seconds(d.get('delay'))}"
        )
    ),
    "webhook.dead": Line(
        lambda d: (
            f"webhook {d.get('delivery')} ({d.get('wh_type')}) given up after "
            f"{d.get('attempts')} attempts: {d.get('error')}"
        ),
        logging.WARNING,
    ),
    "key.created": Line(
        lambda d: f"API key {d.get('name')} created ({', '.join(d.get('scopes') or [])})"
    ),
    "key.revoked": Line(lambda d: f"API key {d.get('name')} revoked"),
    "twin.created": Line(lambda d: f"twin {d.get('name')} created"),
    "twin.updated": Line(lambda d: f"twin {d.get('name')} changed"),
    "twin.deleted": Line(lambda d: f"twin {d.get('name')} deleted"),
    "knowledge.added": Line(
        lambda d: f"twin {d.get('twin')}: document {d.get('document')} {d.get('outcome')} "
        f"({d.get('chunks')} chunks)"
    ),
    "knowledge.removed": Line(
        lambda d: f"twin {d.get('twin')}: document {d.get('document')} removed"
    ),
    "contact.remembered": Line(
        lambda d: f"remembered {d.get('facts')} facts ({', '.join(d.get('kinds') or [])})"
    ),
    "account.mode": Line(
        lambda d: f"account {d.get('account')} is now {d.get('mode')} "
        f"(set by {d.get('by')}: {d.get('reason')})",
        logging.WARNING,
        CONTROL,
        subject="",
    ),
    "account.twin_changed": Line(
        lambda d: f"account {d.get('account')} now answers as twin {d.get('twin')}"
    ),
    "reply.requeued": Line(_requeued),
    "reply.expired": Line(lambda d: f"left failed: {d.get('reason')}", logging.WARNING),
    "chat.paused": Line(_paused, logger=CONTROL, subject=""),
    "chat.resumed": Line(lambda d: "resumed", logger=CONTROL, subject=""),
    "chat.settings_changed": Line(lambda d: "chat settings changed", logger=CONTROL, subject=""),
    "settings.changed": Line(
        lambda d: f"settings changed: {', '.join(map(str, d.get('changed') or ())) or 'none'}",
        logger=CONTROL,
        subject="",
    ),
    "account.authorized": Line(lambda d: "logged in", logger=CONTROL, subject=""),
    "account.logged_out": Line(lambda d: "logged out", logger=CONTROL, subject=""),
    "account.deleted": Line(lambda d: "deleted with its data", logger=CONTROL, subject=""),
}

_OTHER = Line(lambda d: "", logging.DEBUG, logging.getLogger("twin.events"), subject="")


class ActivityLog:
    """Writes one log line for every event `events` publishes (see the module's doc)."""

    def __init__(self, events: EventLog, account_name: Callable[[int], str | None]) -> None:
        self._events = events
        self._account_name = account_name
        self._masked: dict[int, str] = {}  # peer id -> its masked form
        events.subscribe(self)

    def __call__(self, event: StagedEvent) -> None:
        line = LINES.get(event.type, _OTHER)
        if not line.logger.isEnabledFor(line.level):
            return
        data = event.data
        fields: dict[str, Any] = {"event": event.type, "event_id": event.id}
        account = data.get("account")
        if event.account_id is not None:
            account = self._account_name(event.account_id) or account or f"#{event.account_id}"
        prefix = f"account={account}" if account is not None else ""
        if account is not None:
            fields["account"] = account
        chat = self._chat(event.chat_id, data.get("chat"))
        if chat is not None:
            fields["chat"] = chat
            prefix += f" chat={chat}" if prefix else f"chat={chat}"
        for key, value in data.items():
            if key in _FIELD_SET and value is not None:
                fields[key] = value
        delay = data.get("delay_s", data.get("delay"))
        if delay is not None:
            fields["delay_s"] = delay
        if line.subject == "reply" and "reply" in fields:
            prefix += f" reply={fields['reply']}"
        elif line.subject == "message" and "message_id" in fields:
            prefix += f" message={fields['message_id']}"
        text = line.render(data) or event.type
        line.logger.log(line.level, "%s: %s", prefix or event.type, text, extra=fields)

    def _chat(self, chat_id: int | None, named: Any) -> str | None:
        """The masked Telegram id of the event's chat (`#<row id>` for one not met yet)."""
        peer = self._events.peer_of(chat_id)
        if peer is None and isinstance(named, int):
            peer = named
        if peer is None:
            return None if chat_id is None else f"#{chat_id}"  # a chat not met yet (rare)
        masked = self._masked.get(peer)
        if masked is None:
            if len(self._masked) >= _MASKED_KEPT:
                self._masked.clear()
            masked = self._masked[peer] = mask_chat(peer) or "?"
        return masked
