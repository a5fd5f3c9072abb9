"""The HTTP chat channel (`POST /api/chat`, `POST /api/chat/stream`): one conversation per
thread, answered in the request through the pipeline's steps (twin.channels.conversations).

Its policy: no working hours, no human delays, no recipient rules; every request is a new
message (no delivery identity: sending the same text twice asks twice).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from twin.channels.conversations import (
    Answer,
    ChannelParts,
    Conversations,
    Inbound,
    Planned,
    peer_of,
)
from twin.config import Settings

__all__ = ["CHANNEL", "ChatAnswer", "ChatRequest", "HttpChat", "peer_of"]

CHANNEL = "http_chat"
ChatAnswer = Answer


@dataclass(frozen=True, slots=True)
class ChatRequest:
    message: str
    thread_id: str | None = None
    chat_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None


class HttpChat:
    def __init__(self, settings: Settings, parts: ChannelParts) -> None:
        self._settings = settings.channels.chat
        section = self._settings
        self.conversations = Conversations.of(CHANNEL, section, parts)

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    def _inbound(self, request: ChatRequest) -> Inbound:
        thread = request.thread_id or request.chat_id or uuid.uuid4().hex
        return Inbound(thread, request.message, user_name=request.user_name)

    async def answer(self, request: ChatRequest) -> Answer:
        inbound = self._inbound(request)
        conversations = self.conversations
        async with conversations.turn(inbound.thread):
            planned = await conversations.plan(inbound)
            if planned.reply is None:
                return _unanswered(planned, inbound)
            return await conversations.deliver(planned, await conversations.generate(planned))

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Answer]:
        """Text pieces as the model writes them, then the Answer."""
        inbound = self._inbound(request)
        conversations = self.conversations
        async with conversations.turn(inbound.thread):
            planned = await conversations.plan(inbound)
            if planned.reply is None:
                yield _unanswered(planned, inbound)
                return
            async for item in conversations.stream(planned):
                if isinstance(item, str):
                    yield item
                else:
                    yield await conversations.deliver(planned, item)


def _unanswered(planned: Planned, inbound: Inbound) -> Answer:
    """No generation: the away message outside working hours, else an escalated thread."""
    if planned.away is not None:
        return Answer(planned.away, inbound.thread, escalated=False, reply_id=None)
    return Answer("", inbound.thread, escalated=True, reply_id=None)
