"""The event log: every pipeline transition is stored (audit) and announced (SSE listeners).

Two ways to log an event, both durable before anyone is told:

* `emit(...)` appends it in its own transaction, then announces it;
* `stage(tx, ...)` appends it inside a `Repository.transaction` together with the state change
  it records (one round trip, and the change and its event are committed or lost together);
  the caller hands the result to `publish()` once that transaction has committed.

Events are stored with the internal ids of their account and chat; what leaves the process (the
SSE envelope of GET /events, the log lines of twin.services.activity) names them as the rest of
the API does: the account's name and the chat's Telegram peer id. `data` refers to messages by
their Telegram message id (`message_id`) and to replies by `reply` (the `reply_id` of GET
/messages). EVENT_TYPES lists every type and its data; GET /events refuses to filter by others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from twin.db.records import ReplyRecord
    from twin.ports import Tx

log = logging.getLogger("twin.events")

Listener = Callable[["StagedEvent"], None]

# Every event type, with what it means and its `data` (every event also has the envelope's
# account and chat). A new type must be added here (tests/services/test_activity.py checks
# that every type the code emits is listed, and has a log line).
EVENT_TYPES: Mapping[str, str] = {
    "message.received": "a contact's message was stored: chat, message_id, kind, sender "
    "(HTTP chat: also thread and channel; message_id is the stored id)",
    "message.recovered": "a stored message that never got a decision is decided now: chat, "
    "message_id",
    "message.skipped": "a message will not be answered: message_id, reason, explain",
    "message.edited": "a contact edited a message before it was answered: chat, message_id",
    "message.deleted": "a contact deleted a message before it was answered: chat, message_id",
    "message.sent": "a message sent through POST /send_message: chat, message_id, manual",
    "owner.activity": "the owner wrote in the chat from another device: chat, message_id",
    "draft.created": "a reply was written for the owner to decide (draft mode): draft, reply, "
    "chat, expires_at, superseded (older drafts of the chat it replaces)",
    "draft.sent": "the owner sent a draft (as written or edited; or it expired with "
    "draft_after_expiry = send): draft, reply, chat, state, reason, edited",
    "draft.skipped": "the owner skipped a draft: draft, reply, chat, state, reason, edited",
    "draft.expired": "nobody decided a draft in time: draft, reply, chat, state, reason, edited",
    "draft.cancelled": "the owner wrote in the chat (or paused it): its pending drafts are "
    "cancelled: drafts, chat, reason",
    "chat.autonomy": "earned autonomy moved the chat (its [twin] mode override): account, chat, "
    "mode (auto | draft), reason",
    "correction.recorded": "the owner edited (phone_edited) or deleted (phone_deleted) one of "
    "the twin's sent messages from their phone, or wrote right after it (followed_up): "
    "correction, kind, reply",
    "account.mode": "the account's mode changed (twin.services.safety): account, mode (active | "
    "draft | off), reason, by (owner | governor)",
    "owner.command": "the owner typed a command (`.twin off`…) in a chat from another device: "
    "chat, message_id, command (on | off | draft | pause | resume | status | help | invalid), "
    "result, applied, deleted, acknowledged (and mode; minutes, until)",
    "owner.presence": "the owner's own online status changed (set by their devices; the "
    "daemon never sets it): online, at (offline: last seen), until (online: when it expires)",
    "owner.read": "the owner read the chat from another device (not the twin's own read "
    "receipt): chat, max_id, cancelled (pending replies in their grace period)",
    "reply.scheduled": "a reply job was created for a message: reply, message_id, action "
    "(reply | defer | away), reply_at, delay_s, explain",
    "reply.rescheduled": "another message arrived: the reply waits longer (debounce); or the "
    "owner resumed the chat early and a reply deferred to the takeover's end comes sooner "
    "(resumed: true): reply, message_id, reply_at, delay_s, resumed",
    "reply.generating": "the model is asked for the reply: reply",
    "reply.sending": "the reply's bubbles are stored and being sent: reply, bubbles, voice",
    "bubble.sent": "one bubble went out: reply, index, message_id, duplicate",
    "reply.sent": "every bubble went out: reply, bubbles",
    "reply.skipped": "the reply was not sent: reply, reason (into: the reply that answers "
    "its messages instead)",
    "reply.cancelled": "the reply was cancelled (owner took over, message deleted): reply, reason",
    "reply.failed": "the reply failed for good: reply, reason, failure (outage | permanent), error",
    "reply.retry": "a transient failure: the reply is tried again later: reply, error, "
    "reason, delay, attempt",
    "reply.escalated": "the model asked for the owner: the chat is paused and the owner "
    "notified: reply, intent",
    "reply.requeued": "a failed reply is tried again: reply, trigger, state, failure, previous",
    "reply.expired": "an outage failure too old to re-queue: reply, reason, previous, message_at",
    "conversation.escalated": "the model asked for the owner in a conversation of an HTTP "
    "channel: the conversation is paused until resumed: chat, thread, channel, reply",
    "conversation.operator": "a person answered in an external messenger's dialogue "
    "(message_type operator): stored as the owner's turn, the twin paused there: chat, thread, "
    "channel, message_id",
    "webhook.delivered": "an outbound webhook was answered 2xx: delivery, wh_type, attempts",
    "bot.added": "a Telegram bot was connected by its token: bot (its account name), twin",
    "webhook.retry": "an outbound webhook attempt failed; it is tried again after `delay` "
    "seconds: delivery, wh_type, attempts, error, delay",
    "webhook.dead": "an outbound webhook was given up after [channels.external] max_age: "
    "delivery, wh_type, attempts, error",
    "conversation.deleted": "a conversation of an HTTP channel was ended and forgotten "
    "(DELETE /webhook/talkme/session/{user_id}): channel, thread",
    "twin.created": "a twin was created: name",
    "twin.updated": "a twin's persona, behaviour or voice changed: name, changed",
    "twin.deleted": "a twin was deleted: name",
    "knowledge.added": "a document was added to a twin's knowledge base (or replaced it): twin, "
    "document, outcome (added | replaced), chunks",
    "knowledge.removed": "a document was removed from a twin's knowledge base: twin, document",
    "contact.remembered": "what a contact said was remembered after the chat went quiet: chat, "
    "facts (how many were stored), kinds",
    "account.twin_changed": "an account answers as another twin: account, twin, previous",
    "key.created": "an API key was created (never its secret): name, prefix, scopes, account, twin",
    "key.revoked": "an API key was revoked: name, prefix",
    "chat.paused": "the twin was paused in a chat: account, chat, until, minutes, cancelled "
    "(an owner takeover, restarted by each owner message: takeover_since, its first message)",
    "chat.resumed": "the twin was resumed in a chat: account, chat",
    "chat.settings_changed": "a chat's overrides changed: account, chat, overrides",
    "settings.changed": "an account's overrides changed: account, changed",
    "account.authorized": "an account logged in: account",
    "account.logged_out": "an account logged out: account",
    "account.deleted": "an account was deleted with its data: account",
}

_PEERS_KEPT = 100_000  # chat id -> Telegram peer id pairs remembered (a few MB at most)


class EventStore(Protocol):
    async def append_event(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An event appended inside a transaction; `publish()` it after the commit."""

    id: int
    type: str
    data: Mapping[str, Any]
    account_id: int | None = None
    chat_id: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteEvents:
    """What another process of the cluster announced: its events' types and accounts
    (`unknown()`: notifications may have been lost, anything may have happened)."""

    types: frozenset[str]
    accounts: frozenset[int]
    everything: bool = False

    @classmethod
    def unknown(cls) -> RemoteEvents:
        return cls(frozenset(), frozenset(), everything=True)

    def any_of(self, *types: str) -> bool:
        return self.everything or not self.types.isdisjoint(types)

    def touches(self, accounts: Collection[int]) -> bool:
        return self.everything or not self.accounts.isdisjoint(accounts)


def relay_payload(committed: list[StagedEvent]) -> str:
    """`<newest id> <types> <accounts>` of a batch of committed events, for the other
    processes: the newest id is all their streams need (they read on from the last one they
    saw); the batch's few distinct types and accounts tell who must act — far below
    NOTIFY's 8000 bytes."""
    types = sorted({event.type for event in committed})
    accounts = sorted({event.account_id for event in committed if event.account_id is not None})
    newest = max(event.id for event in committed)
    return f"{newest} {','.join(types)} {','.join(map(str, accounts))}"


def parse_relayed(text: str) -> tuple[list[int], RemoteEvents] | None:
    """The ids and what they tell of another process's `relay_payload`; None when it is not
    one. (A payload of ids only, as an older process sends, still wakes the streams.)"""
    listed, _, rest = text.partition(" ")
    types, _, accounts = rest.partition(" ")
    try:
        ids = [int(part) for part in listed.split(",") if part]
        told = RemoteEvents(
            frozenset(filter(None, types.split(","))),
            frozenset(int(part) for part in accounts.split(",") if part),
        )
    except ValueError:
        return None
    return (ids, told) if ids else None


class EventLog:
    """Appends events durably, then wakes everyone waiting in `wait_after()` and calls the
    subscribed listeners (in-process reactions, e.g. dropping cached settings)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._waiters: set[asyncio.Future[None]] = set()
        self._listeners: list[Listener] = []
        self.last_id = 0
        # Several processes (twin.db.cluster): told the ids of the events this one announced,
        # so the others can announce them too.
        self.relay: Callable[[list[StagedEvent]], None] | None = None
        # told what another process announced (its events' types and accounts)
        self._remote_listeners: list[Callable[[RemoteEvents], None]] = []
        # chat id -> Telegram peer id, learnt from the events that name both and from the
        # chats the pipeline reads: what listeners (the log lines) name a chat by
        self._peers: dict[int, int] = {}

    def remember_chat(self, chat_id: int, peer_id: int) -> None:
        """Record a chat's Telegram peer id (a chat's id never changes its peer)."""
        peers = self._peers
        if chat_id not in peers:
            if len(peers) >= _PEERS_KEPT:
                peers.clear()
            peers[chat_id] = peer_id

    def peer_of(self, chat_id: int | None) -> int | None:
        """The Telegram peer id of a chat this process has met (None if not)."""
        return None if chat_id is None else self._peers.get(chat_id)

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(event)` for every event announced from now on (synchronously, in the
        announcing task: keep it quick and let it not raise)."""
        self._listeners.append(listener)

    async def emit(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int:
        event_id = await self._store.append_event(
            type, data, account_id=account_id, chat_id=chat_id
        )
        self.publish(StagedEvent(event_id, type, dict(data or {}), account_id, chat_id))
        return event_id

    @staticmethod
    def stage(
        tx: Tx,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> StagedEvent:
        """Append an event inside the transaction `tx` (a `Repository.transaction`)."""
        data = dict(data or {})
        event_id = tx.append_event(type, data, account_id=account_id, chat_id=chat_id)
        return StagedEvent(event_id, type, data, account_id, chat_id)

    def stage_reply(self, tx: Tx, type: str, reply: ReplyRecord, **data: Any) -> StagedEvent:
        """An event about a reply job (`data` gets its id), appended inside `tx`."""
        return self.stage(
            tx,
            type,
            {"reply": reply.id, **data},
            account_id=reply.account_id,
            chat_id=reply.chat_id,
        )

    def publish(self, *events: StagedEvent | None) -> None:
        """Announce events whose transaction has committed (None entries are skipped)."""
        if self.relay is not None:
            committed = [event for event in events if event is not None]
            if committed:
                self.relay(committed)
        announced = False
        for event in events:
            if event is None:
                continue
            announced = True
            if event.chat_id is not None and event.chat_id not in self._peers:
                peer = event.data.get("chat")
                if isinstance(peer, int):
                    self.remember_chat(event.chat_id, peer)
            self.last_id = max(self.last_id, event.id)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed on %s", event.type)
        if announced:
            self._wake()

    def take_remote(self, ids: list[int], told: RemoteEvents | None = None) -> None:
        """Events another process committed: wake the streams here (they read events from
        the database). In-process listeners are not called: their reactions (a note to the
        owner, a re-queue, a log line) belong to the process that made the event, and the
        caches they drop are rebuilt from the database anyway. What needs to act on another
        process's events (a draft's note sent by the bot served here, a reply job created
        for an account served here) listens with `on_remote` and is told their types and
        accounts."""
        newest = max(ids, default=0)
        if newest > self.last_id:
            self.last_id = newest
            self._wake()
        if told is not None:
            for listener in self._remote_listeners:
                try:
                    listener(told)
                except Exception:
                    log.exception("remote event listener failed")

    def on_remote(self, listener: Callable[[RemoteEvents], None]) -> None:
        """Call `listener(told)` with the types and accounts of the events another process
        announced."""
        self._remote_listeners.append(listener)

    def _wake(self) -> None:
        """Everyone waiting in `wait_after()` looks again."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_after(self, last_id: int, timeout: float) -> bool:
        """Wait until an event newer than `last_id` exists; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last_id <= last_id:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:  # not wait_for (see background.woken)
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                return self.last_id > last_id
            finally:
                self._waiters.discard(waiter)
        return True
