"""The storage repository: one class composed of one mixin per aggregate.

Every method is one short transaction (a unit of work, see twin.db.engine), takes and returns
plain values and frozen records from twin.db.records (never ORM objects), and raises
twin.errors.NotFound / Conflict. `Repository.transaction(work)` runs several of the operations
in one transaction: the hot path of the reply pipeline uses it to make one round trip to the
database per step instead of one per statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twin.db.repo.accounts import AccountsMixin
from twin.db.repo.analytics import AnalyticsMixin
from twin.db.repo.app_sessions import AppSessionsMixin
from twin.db.repo.chats import ChatsMixin
from twin.db.repo.cluster import ClusterMixin
from twin.db.repo.conversations import ConversationsMixin
from twin.db.repo.corrections import CorrectionsMixin
from twin.db.repo.deliveries import DeliveriesMixin
from twin.db.repo.drafts import DraftsMixin
from twin.db.repo.failures import FailuresMixin
from twin.db.repo.history import HistoryMixin
from twin.db.repo.keys import KeysMixin
from twin.db.repo.knowledge import KnowledgeMixin
from twin.db.repo.memory import MemoryMixin
from twin.db.repo.messages import MessagesMixin
from twin.db.repo.misc import MiscMixin
from twin.db.repo.presence import PresenceMixin
from twin.db.repo.rate_windows import RateWindowsMixin
from twin.db.repo.replies import RepliesMixin
from twin.db.repo.retention import RetentionMixin
from twin.db.repo.safety import SafetyMixin
from twin.db.repo.sessions import SessionsMixin
from twin.db.repo.stats import StatsMixin
from twin.db.repo.twins import TwinsMixin

__all__ = ["Repository", "Transaction"]

T = TypeVar("T")


class Repository(
    AccountsMixin,
    ChatsMixin,
    MessagesMixin,
    HistoryMixin,
    RepliesMixin,
    FailuresMixin,
    MiscMixin,
    StatsMixin,
    KeysMixin,
    TwinsMixin,
    DeliveriesMixin,
    AnalyticsMixin,
    SessionsMixin,
    KnowledgeMixin,
    MemoryMixin,
    SafetyMixin,
    PresenceMixin,
    DraftsMixin,
    CorrectionsMixin,
    AppSessionsMixin,
    ConversationsMixin,
    ClusterMixin,
    RetentionMixin,
    RateWindowsMixin,
):
    """Implements the daemon's storage port on SQLAlchemy (SQLite or PostgreSQL)."""

    async def transaction(
        self, work: Callable[[Transaction], T], *, write: bool = True, hot: bool = True
    ) -> T:
        """Run `work(tx)` in one transaction: committed when it returns, rolled back (nothing
        written) when it raises. `tx` offers the repository's operations synchronously.

        `write=False` declares that `work` only reads (on SQLite: BEGIN DEFERRED instead of
        IMMEDIATE; it must not write then). `hot=True` is for the short units of the hot path
        (a few indexed statements): on SQLite they may run on the event loop's own thread (see
        twin.db.engine.SQLiteRunner); `hot=False` units (batches, purges, start-up passes: long
        or reading cold pages) always run in the database thread. On PostgreSQL every unit runs
        inside SQLAlchemy's greenlet bridge. `work` must only compute and call `tx` (no awaits,
        no I/O of its own), and may run twice: a unit that found the database locked is rolled
        back and run again where it can wait.
        """
        unit = self._stamped(lambda connection: work(Transaction(self, connection)))
        if hot:
            return await self._runner.run_inline(unit, write=write)
        return await self._runner.run(unit, write=write)


def _op(name: str) -> Any:
    implementation = "_" + name

    def call(self: Transaction, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._repo, implementation)(self._connection, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = f"`Repository.{name}`, inside the transaction."
    return call


class Transaction:
    """The repository's operations inside one `Repository.transaction` (synchronous; same
    arguments and results as the async methods of the same names)."""

    __slots__ = ("_connection", "_repo")

    def __init__(self, repo: Repository, connection: Any) -> None:
        self._repo = repo
        self._connection = connection

    # accounts
    delete_account = _op("delete_account")
    # chats
    upsert_chat = _op("upsert_chat")
    get_chat = _op("get_chat")
    update_chat = _op("update_chat_by_id")
    # messages
    add_incoming = _op("add_incoming")
    add_outgoing = _op("add_outgoing")
    update_message = _op("update_message")
    mark_sent = _op("mark_sent")
    history = _op("history")
    conversation = _op("conversation")
    finish_reply_messages = _op("finish_reply_messages")
    reply_messages = _op("reply_messages")
    unplanned_message = _op("unplanned_message")
    # replies
    create_reply = _op("create_reply")
    attach_messages = _op("attach_messages")
    get_reply = _op("get_reply")
    update_reply = _op("update_reply")
    claim_due_replies = _op("claim_due_replies")
    release_leases = _op("release_leases")
    pending_reply = _op("pending_reply")
    next_due_at = _op("next_due_at")
    reply_times = _op("reply_times")
    count_replies = _op("count_replies")
    outage_failures = _op("outage_failures")
    requeue_reply = _op("requeue_reply")
    # settings, style, events
    get_settings = _op("get_settings")
    behaviour_overrides = _op("behaviour_overrides")
    get_style_profile = _op("get_style_profile")
    style_profile_version = _op("style_profile_version")
    append_event = _op("append_event")
    add_delivery = _op("add_delivery")
    # knowledge and contact memory
    knowledge_twin = _op("knowledge_twin")
    store_document = _op("store_document")
    delete_document = _op("delete_document")
    search_knowledge = _op("search_knowledge")
    knowledge_passages = _op("knowledge_passages")
    knowledge_version = _op("knowledge_version")
    # the owner's drafts
    create_draft = _op("create_draft")
    get_draft = _op("get_draft")
    decide_draft = _op("decide_draft")
    cancel_chat_drafts = _op("cancel_chat_drafts")
    record_correction = _op("record_correction")
    memory_for_chat = _op("memory_for_chat")
    store_memory = _op("store_memory")
    # the owner's activity
    note_owner_activity = _op("note_owner_activity")
    set_owner_status = _op("set_owner_status")
    owner_activity = _op("owner_activity")
