"""Reading what is there: the account's dialogs, its private chats, a chat's history size and the
owner's own messages page by page (what `twin style build` learns from) and whole pages of a chat
(what `twin style eval` tests on).

A mixin of TelegramAccount (account.py) built on AccountBase (base.py), as Telethon's
`client/dialogs.py` is of its client."""

from __future__ import annotations

from typing import Any

from twin.adapters.telegram import mapping
from twin.adapters.telegram.base import AccountBase
from twin.adapters.telegram.records import Dialog, OwnPage
from twin.adapters.telegram.refusals import rpc_errors
from twin.adapters.telegram.updates import SERVICE_USER_ID
from twin.domain.style_eval import Line
from twin.domain.timing import HistoryMessage


class HistoryMethods(AccountBase):
    async def private_chat_ids(self, limit: int = 500) -> list[int]:
        """Private chats with people (no bots, no Saved Messages), most recent first."""
        self.require_authorized()
        with rpc_errors(self.name):
            found = await self.client.get_dialogs(limit=limit)
        return [
            d.id
            for d in found
            if d.is_user
            and not getattr(d.entity, "bot", False)
            and not getattr(d.entity, "is_self", False)
            and d.id != SERVICE_USER_ID
        ]

    async def has_history(self, chat: int | str) -> bool:
        """Whether the chat holds any message (one request for its newest)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            found = await self.client.get_messages(peer, limit=1)
        return bool(found)

    async def history_size(self, chat: int) -> int:
        """How many messages the chat's history holds (one request, no message read)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            found = await self.client.get_messages(peer, limit=0)
        return int(found.total or 0)

    async def own_messages(self, chat: int, *, before_id: int = 0, limit: int = 100) -> OwnPage:
        """One page of history older than `before_id`: the owner's own messages in it (newest
        first; text may be empty for media), how many messages the page held, the cursor
        of the next page (None at the end) and who wrote each message when (the timeline)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            # Plain history, filtered here: works everywhere messages.search may not.
            page = await self.client.get_messages(peer, limit=limit, offset_id=before_id)
        own = [(m.id, m.message or "", m.date) for m in page if m.out]
        timeline = tuple(
            HistoryMessage(m.id, m.date, bool(m.out), len((m.message or "").strip()))
            for m in page
            if getattr(m, "action", None) is None and m.date is not None
        )
        return OwnPage(own, len(page), page[-1].id if len(page) == limit else None, timeline)

    async def chat_lines(
        self, chat: int, *, before_id: int = 0, limit: int = 100
    ) -> tuple[list[Line], int | None]:
        """One page of a chat's history older than `before_id`, oldest first, service
        messages left out; and the next page's cursor (None: the history ends here)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            page = await self.client.get_messages(peer, limit=limit, offset_id=before_id)
        lines = [
            Line(m.id, m.date, bool(m.out), m.message or "")
            for m in reversed(page)
            if getattr(m, "action", None) is None and m.date is not None
        ]
        return lines, page[-1].id if len(page) == limit else None

    async def button_data(self, chat: int, message_id: int) -> list[bytes]:
        """The callback data of a message's inline buttons ([] for none, or no such message)."""
        peer = await self.input_peer(chat)
        with rpc_errors(self.name):
            found = await self.client.get_messages(peer, ids=message_id)
        return [data for _, data in mapping.callback_data(found)]

    async def dialogs(self, limit: int, offset: int = 0) -> list[Dialog]:
        self.require_authorized()
        with rpc_errors(self.name):
            found = await self.client.get_dialogs(limit=limit + offset)
        owner_id = self._me.id if self._me else None
        return [_dialog(dialog, owner_id) for dialog in found[offset : offset + limit]]


def _dialog(dialog: Any, owner_id: int | None) -> Dialog:
    """A Telethon dialog as the account's record."""
    message = dialog.message
    kind = mapping.chat_kind(dialog.entity, chat_id=dialog.id, owner_id=owner_id)
    return Dialog(
        id=dialog.id,
        title=dialog.name or mapping.display_name(dialog.entity),
        username=getattr(dialog.entity, "username", None),
        kind=kind.value,
        unread_count=dialog.unread_count,
        last_message=_preview(message),
        last_message_at=getattr(message, "date", None),
    )


def _preview(message: Any, length: int = 100) -> str | None:
    if message is None:
        return None
    text = getattr(message, "message", "") or ""
    if not text:
        kind, _ = mapping.media_kind(message)
        return f"[{kind.value}]"
    return text if len(text) <= length else text[: length - 1] + "…"
