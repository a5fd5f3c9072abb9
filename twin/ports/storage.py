"""The storage port: the repository (`Store`) and one unit of work inside `Store.transaction`
(`Tx`), implemented by twin.db.repo on SQLite and PostgreSQL. Part of twin.ports (which
re-exports both); the records are twin.db.records'."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from twin.domain.models import Direction, Failure, MessageKind, ReplyState

if TYPE_CHECKING:
    from twin.db.records import (
        AccountRecord,
        ApiKeyRecord,
        AppSessionRecord,
        ChatRecord,
        DeliveryRecord,
        EntityRecord,
        MessageRecord,
        OwnerActivityRecord,
        ReplyRecord,
        StyleProfileRecord,
        TwinRecord,
    )
    from twin.db.records_drafts import CorrectionRecord, DraftRecord, StyleEvalRecord
    from twin.db.repo.analytics import Metrics
    from twin.db.repo.failures import OutageFailure
    from twin.db.repo.history import ConversationRow
    from twin.db.repo.sessions import SessionRow, TurnRow

T = TypeVar("T")


@runtime_checkable
class Tx(Protocol):
    """The repository's operations inside one unit of work (synchronous: a unit only computes
    and calls these; it may run twice, see `Store.transaction`)."""

    def delete_account(self, name: str) -> None: ...
    def upsert_chat(
        self,
        account_id: int,
        peer_id: int,
        *,
        kind: str | None = None,
        title: str | None = None,
        username: str | None = None,
        is_contact: bool | None = None,
        is_bot: bool | None = None,
        external_id: str | None = None,
    ) -> tuple[ChatRecord, bool]: ...
    def get_chat(self, chat_id: int) -> ChatRecord: ...
    def update_chat(self, chat_id: int, **fields: Any) -> ChatRecord: ...
    def add_incoming(
        self,
        account_id: int,
        chat_id: int,
        tg_message_id: int,
        *,
        date: datetime,
        text: str | None = None,
        kind: MessageKind | str = MessageKind.TEXT,
        sender_id: int | None = None,
        reply_to_tg_id: int | None = None,
        duration: float | None = None,
        transcript: str | None = None,
        direction: Direction | str = Direction.INCOMING,
        state: ReplyState | str | None = None,
    ) -> tuple[MessageRecord, bool]: ...
    def add_outgoing(
        self,
        account_id: int,
        chat_id: int,
        *,
        text: str | None,
        kind: MessageKind | str = MessageKind.TEXT,
        reply_id: int | None = None,
        bubble_index: int | None = None,
        random_id: int | None = None,
        state: ReplyState | str = ReplyState.SENDING,
        date: datetime | None = None,
        duration: float | None = None,
    ) -> MessageRecord: ...
    def update_message(self, message_id: int, **fields: Any) -> MessageRecord: ...
    def mark_sent(
        self,
        message_id: int,
        tg_message_id: int,
        *,
        date: datetime | None = None,
    ) -> MessageRecord: ...
    def history(
        self,
        account_id: int,
        chat_id: int,
        *,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[MessageRecord]: ...
    def conversation(
        self,
        account_id: int,
        chat_id: int,
        *,
        limit: int = 50,
    ) -> list[ConversationRow]: ...
    def finish_reply_messages(
        self,
        reply_id: int,
        state: ReplyState | str,
        reason: str | None = None,
    ) -> None: ...
    def reply_messages(self, reply_id: int) -> list[MessageRecord]: ...
    def unplanned_message(self, message_id: int) -> MessageRecord | None: ...
    def create_reply(
        self,
        account_id: int,
        chat_id: int,
        *,
        reply_at: datetime,
        message_ids: Iterable[int] = (),
        state: ReplyState | str = ReplyState.SCHEDULED,
        reason: str | None = None,
        decision: Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
        voice: bool = False,
        message_state: ReplyState | str | None = None,
        lease_until: datetime | None = None,
    ) -> ReplyRecord: ...
    def attach_messages(
        self,
        reply_id: int,
        message_ids: Iterable[int],
        *,
        message_state: ReplyState | str | None = None,
    ) -> None: ...
    def get_reply(self, reply_id: int) -> ReplyRecord: ...
    def update_reply(
        self,
        reply_id: int,
        *,
        expect_state: ReplyState | str | Iterable[ReplyState | str] | None = None,
        **fields: Any,
    ) -> ReplyRecord: ...
    def claim_due_replies(
        self,
        now: datetime,
        lease_seconds: float,
        limit: int = 10,
        mine: Collection[int] | None = None,
    ) -> list[ReplyRecord]: ...
    def release_leases(
        self, ids: list[int] | None = None, *, account_id: int | None = None
    ) -> int: ...
    def pending_reply(self, chat_id: int) -> ReplyRecord | None: ...
    def next_due_at(self) -> datetime | None: ...
    def reply_times(
        self,
        account_id: int,
        since: datetime,
        *,
        chat_id: int | None = None,
    ) -> list[datetime]: ...
    def count_replies(
        self,
        account_id: int,
        since: datetime,
        *,
        chat_id: int | None = None,
    ) -> int: ...
    def outage_failures(
        self,
        limit: int = 200,
        *,
        chat_id: int | None = None,
    ) -> list[OutageFailure]: ...
    def requeue_reply(
        self,
        reply_id: int,
        *,
        failures: Iterable[Failure | str | None] | None = None,
        attempts: int = 0,
    ) -> ReplyRecord: ...
    def get_settings(self, account_id: int) -> dict[str, Any]: ...
    def behaviour_overrides(self, account_id: int) -> dict[str, Any]: ...
    def get_style_profile(self, account_id: int) -> StyleProfileRecord | None: ...
    def style_profile_version(self, account_id: int) -> datetime | None: ...
    def append_event(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        account_id: int | None = None,
        chat_id: int | None = None,
    ) -> int: ...
    def add_delivery(
        self,
        *,
        account_id: int,
        key: str,
        url: str,
        payload: dict[str, Any],
        now: datetime,
        chat_id: int | None = None,
        reply_id: int | None = None,
    ) -> int: ...
    def note_owner_activity(self, account_id: int, active_at: datetime) -> OwnerActivityRecord: ...
    def set_owner_status(
        self, account_id: int, active_at: datetime, online_until: datetime | None
    ) -> OwnerActivityRecord: ...
    def owner_activity(self, account_id: int) -> OwnerActivityRecord | None: ...
    # the owner's drafts (twin.db.repo.drafts)
    def create_draft(
        self,
        account_id: int,
        chat_id: int,
        reply_id: int,
        text: str,
        *,
        at: datetime,
        expires_at: datetime | None,
        notice_random_id: int | None = None,
    ) -> tuple[DraftRecord, int]: ...
    def get_draft(self, draft_id: int) -> DraftRecord: ...
    def decide_draft(
        self,
        draft_id: int,
        state: str,
        *,
        at: datetime,
        reason: str | None = None,
        final_text: str | None = None,
        sent_reply_id: int | None = None,
    ) -> DraftRecord: ...
    def cancel_chat_drafts(
        self, chat_id: int, reason: str, at: datetime | None = None
    ) -> list[int]: ...
    def record_correction(
        self,
        account_id: int,
        chat_id: int,
        kind: str,
        *,
        context: str,
        twin_text: str,
        owner_text: str | None,
        draft_id: int | None = None,
    ) -> int: ...


@runtime_checkable
class Store(Protocol):
    """The repository (twin.db.repo.Repository): each method is one short transaction;
    `transaction(work)` runs several operations as one (`write=False`: it only reads;
    `hot=False`: not a short unit of the reply pipeline, never run on the event loop)."""

    async def transaction(
        self, work: Callable[[Tx], T], *, write: bool = True, hot: bool = True
    ) -> T: ...

    async def add_outgoing(
        self,
        account_id: int,
        chat_id: int,
        *,
        text: str | None,
        kind: MessageKind | str = MessageKind.TEXT,
        reply_id: int | None = None,
        bubble_index: int | None = None,
        random_id: int | None = None,
        state: ReplyState | str = ReplyState.SENDING,
        date: datetime | None = None,
        duration: float | None = None,
    ) -> MessageRecord: ...
    async def conversation(
        self,
        account_id: int,
        chat_id: int,
        *,
        limit: int = 50,
    ) -> list[ConversationRow]: ...
    async def delete_session(self, name: str) -> AccountRecord: ...
    async def get_account(self, name: str) -> AccountRecord: ...
    async def channel_instance(self, name: str, channel: str) -> AccountRecord: ...
    async def delete_chat(self, chat_id: int) -> bool: ...
    async def conversation_activity(
        self, account_id: int, since: datetime
    ) -> list[tuple[ChatRecord, int]]: ...
    async def create_key(
        self,
        name: str,
        *,
        prefix: str,
        hash: str,
        scopes: Sequence[str],
        account_id: int | None = None,
        twin: str | None = None,
    ) -> ApiKeyRecord: ...
    async def list_keys(self) -> list[ApiKeyRecord]: ...
    async def key_by_hash(self, hash: str) -> ApiKeyRecord | None: ...
    async def revoke_key(self, name: str, at: datetime) -> ApiKeyRecord: ...
    async def key_used(self, key_id: int, at: datetime) -> None: ...
    async def claim_due_deliveries(
        self, now: datetime, lease: timedelta, limit: int = 20
    ) -> list[DeliveryRecord]: ...
    async def delivery_done(self, delivery_id: int, at: datetime, status: int) -> None: ...
    async def delivery_failed(
        self, delivery_id: int, error: str, status: int | None, next_attempt_at: datetime | None
    ) -> None: ...
    async def list_deliveries(
        self, state: str | None = None, *, account_id: int | None = None, limit: int = 100,
        before: int | None = None,
    ) -> list[DeliveryRecord]: ...
    async def get_delivery(self, delivery_id: int) -> DeliveryRecord: ...
    async def redeliver(self, delivery_id: int, now: datetime) -> DeliveryRecord: ...
    async def next_delivery_at(self) -> datetime | None: ...
    async def analytics(
        self,
        since: datetime,
        until: datetime,
        *,
        platform: str | None = None,
        user: str | None = None,
        account_ids: Sequence[int] | None = None,
    ) -> Metrics: ...
    async def sessions_of(self, account_id: int, user_id: str) -> list[SessionRow]: ...
    async def count_incoming(self, account_id: int, *, since: datetime) -> int: ...
    async def turns(
        self, chat_id: int, *, limit: int, offset: int
    ) -> tuple[list[TurnRow], int]: ...
    async def behaviour_overrides(self, account_id: int) -> dict[str, Any]: ...
    async def twin_voice(self, account_id: int) -> dict[str, Any]: ...
    async def list_twins(self) -> list[TwinRecord]: ...
    async def get_twin(self, name: str) -> TwinRecord: ...
    async def create_twin(
        self, name: str, settings: Mapping[str, Any], voice: Mapping[str, Any]
    ) -> TwinRecord: ...
    async def ensure_twin(self, name: str) -> TwinRecord: ...
    async def update_twin(
        self, name: str, settings: Mapping[str, Any], voice: Mapping[str, Any]
    ) -> TwinRecord: ...
    async def delete_twin(self, name: str) -> None: ...
    async def twin_accounts(
        self, twin_id: int, *, default: bool = False, channel: str | None = None
    ) -> list[str]: ...
    async def set_account_twin(self, account_id: int, twin_id: int | None) -> None: ...
    async def get_chat(self, chat_id: int) -> ChatRecord: ...
    async def get_chat_by_peer(self, account_id: int, peer_id: int) -> ChatRecord: ...
    async def get_message_by_tg(
        self,
        account_id: int,
        chat_id: int,
        tg_message_id: int,
    ) -> MessageRecord: ...
    async def get_reply(self, reply_id: int) -> ReplyRecord: ...
    async def get_settings(self, account_id: int) -> dict[str, Any]: ...
    async def get_style_profile(self, account_id: int) -> StyleProfileRecord | None: ...
    async def incoming_by_tg_ids(
        self,
        account_id: int,
        tg_message_ids: list[int],
        *,
        chat_id: int | None = None,
        direction: str = "incoming",
    ) -> list[MessageRecord]: ...
    async def list_accounts(self) -> list[AccountRecord]: ...
    async def list_entities(self, account_id: int) -> list[EntityRecord]: ...
    async def load_session(self, name: str) -> bytes | None: ...
    async def load_update_state(self, name: str) -> dict[str, Any] | None: ...
    async def mark_sent(
        self,
        message_id: int,
        tg_message_id: int,
        *,
        date: datetime | None = None,
    ) -> MessageRecord: ...
    async def next_due_at(self) -> datetime | None: ...
    async def outage_failures(
        self,
        limit: int = 200,
        *,
        chat_id: int | None = None,
    ) -> list[OutageFailure]: ...
    async def put_style_profile(
        self,
        account_id: int,
        data: Mapping[str, Any],
        cursor: Mapping[str, Any] | None = None,
    ) -> StyleProfileRecord: ...
    async def release_leases(
        self, ids: list[int] | None = None, *, account_id: int | None = None
    ) -> int: ...
    async def note_owner_activity(
        self, account_id: int, active_at: datetime
    ) -> OwnerActivityRecord: ...
    async def set_owner_status(
        self, account_id: int, active_at: datetime, online_until: datetime | None
    ) -> OwnerActivityRecord: ...
    async def owner_activity(self, account_id: int) -> OwnerActivityRecord | None: ...
    async def last_owner_message_id(self, account_id: int, chat_id: int) -> int | None: ...
    async def message_before(
        self, account_id: int, chat_id: int, tg_message_id: int
    ) -> MessageRecord | None: ...
    async def reply_messages(self, reply_id: int) -> list[MessageRecord]: ...
    async def save_session(self, name: str, data: bytes) -> None: ...
    async def save_update_state(self, name: str, state: Mapping[str, Any]) -> None: ...
    async def style_profile_version(self, account_id: int) -> datetime | None: ...
    async def twin_sent_ids(self, account_id: int, peer_id: int) -> set[int]:
        """The Telegram ids of the twin's own replies in a chat (style build leaves them out)."""
        ...
    async def unfinished_replies(self, account_id: int | None = None) -> list[ReplyRecord]: ...
    async def unplanned_incoming(
        self,
        since: datetime,
        limit: int = 1000,
    ) -> list[MessageRecord]: ...
    async def update_account(self, name: str, **fields: Any) -> AccountRecord: ...
    async def update_chat(self, chat_id: int, **fields: Any) -> ChatRecord: ...
    async def update_message(self, message_id: int, **fields: Any) -> MessageRecord: ...
    async def update_reply(
        self,
        reply_id: int,
        *,
        expect_state: ReplyState | str | Iterable[ReplyState | str] | None = None,
        **fields: Any,
    ) -> ReplyRecord: ...
    async def upsert_chat(
        self,
        account_id: int,
        peer_id: int,
        *,
        kind: str | None = None,
        title: str | None = None,
        username: str | None = None,
        is_contact: bool | None = None,
        is_bot: bool | None = None,
        external_id: str | None = None,
    ) -> tuple[ChatRecord, bool]: ...
    async def upsert_entities(self, account_id: int, rows: Iterable[Mapping[str, Any]]) -> int: ...
    async def get_draft(self, draft_id: int) -> DraftRecord: ...
    async def drafts(
        self, *, account_id: int | None = None, state: str | None = "pending", limit: int = 100
    ) -> list[DraftRecord]: ...
    async def due_drafts(self, now: datetime, limit: int = 100) -> list[DraftRecord]: ...
    async def next_draft_expiry(self) -> datetime | None: ...
    async def draft_by_notice(self, account_id: int, message_id: int) -> DraftRecord | None: ...
    async def draft_by_bot_notice(self, bot_id: int, message_id: int) -> DraftRecord | None: ...
    async def route_draft_notice(
        self, draft_id: int, route: str, bot_id: int | None, *, again: bool = False
    ) -> DraftRecord: ...
    async def set_draft_notice(self, draft_id: int, message_id: int) -> None: ...
    async def unnoticed_drafts(
        self, limit: int = 100, accounts: Collection[int] | None = None
    ) -> list[DraftRecord]: ...
    async def corrections(
        self,
        account_id: int | None = None,
        *,
        limit: int = 100,
        examples: bool = False,
        chat_id: int | None = None,
    ) -> list[CorrectionRecord]: ...
    async def delete_correction(self, account_id: int, correction_id: int) -> None: ...
    async def add_app_session(
        self,
        id_hash: str,
        *,
        principal: str,
        key_id: int | None,
        csrf: str,
        at: datetime,
        expires_at: datetime,
    ) -> None: ...
    async def app_session(self, id_hash: str) -> AppSessionRecord | None: ...
    async def touch_app_session(self, id_hash: str, at: datetime) -> None: ...
    async def delete_app_sessions(self, id_hash: str | None = None) -> int: ...
    async def add_login_link(
        self, token_hash: str, *, at: datetime, expires_at: datetime
    ) -> None: ...
    async def take_login_link(self, token_hash: str, now: datetime) -> bool: ...
    async def add_style_eval(
        self,
        account_id: int,
        *,
        model: str,
        samples: int,
        score: int,
        result: dict[str, Any],
        report_path: str | None,
    ) -> int: ...
    async def style_evals(
        self, account_id: int | None = None, *, limit: int = 20
    ) -> list[StyleEvalRecord]: ...
