"""A chat's stored history, and conversations across channels (what the admin app's
conversation list and messenger view read).

- `GET /conversations`: every stored conversation of every account and channel instance,
  newest activity first, filtered by channel, state (paused, escalated: its newest reply job
  was handed to the owner; failed: a reply job failed) and a search (title, username, the
  channel's conversation id, the messages' texts and transcripts).
- `GET /messages`: a page of one chat's messages, newest first, each reply job that the page's
  messages belong to explained once in `replies` (the decision and its reasons, when it was
  decided and scheduled, when it finished, attempts, failure, tokens, cost, knowledge used).
- `GET /messages/{id}/audio`: a voice note's sound, read from Telegram when asked (twin keeps
  transcripts, not audio), through the account's existing connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from twin import keys
from twin.api.fields import PeerId, RowId
from twin.api.validation import ApiModel, RouteTable
from twin.api.views.telegram import AccountName
from twin.db.repo.conversations import ReplyDetail
from twin.domain.models import MessageKind
from twin.errors import InvalidInput, NotFound

routes = RouteTable(tags=("telegram",))

Channel = Literal["telegram", "telegram_bot", "http_chat", "talkme", "external", "api"]
AUDIO_KINDS = frozenset({MessageKind.VOICE.value, MessageKind.AUDIO.value})
MAX_AUDIO_SECONDS = 3600  # read whole into memory to answer: longer sound stays on Telegram
LAST_TEXT_CHARS = 160


# --- models -------------------------------------------------------------------------------------


class MessagesQuery(ApiModel):
    chat: PeerId
    limit: int = Field(50, ge=1, le=500)
    before: RowId | None = Field(None, description="the `id` of the oldest message already seen")
    account: str = AccountName


class SourceOut(ApiModel):
    chunk_id: int
    document: str
    heading: str
    label: str = Field(description="how the prompt named it (K1…)")


class SourcesOut(ApiModel):
    given: list[SourceOut]
    used: list[SourceOut]


class MessageOut(ApiModel):
    id: int
    telegram_id: int | None
    direction: str
    kind: str
    text: str | None
    transcript: str | None
    duration: float | None
    reply_to: int | None
    date: datetime
    state: str
    state_reason: str | None
    reply_id: int | None
    prompt_tokens: int | None = Field(
        description="on the first bubble of a generated reply: the LLM input tokens of "
        "generating it; else null"
    )
    completion_tokens: int | None = Field(description="LLM output tokens, as `prompt_tokens`")
    cost_usd: float | None = Field(
        description="USD spent: generating the reply (its first bubble) or transcribing a voice "
        "note; null when unknown (a model without a built-in or configured price), never 0"
    )
    sources: SourcesOut | None = Field(
        None,
        description="on the first bubble of a generated reply: the knowledge base's passages "
        "it was given and those the model says it used; else null",
    )


class ReplyOut(ApiModel):
    """A reply job: why and when the twin answered (or did not)."""

    id: int
    state: str = Field(description="scheduled, generating, sending, sent, skipped, failed …")
    reason: str | None = Field(description="why it was skipped or cancelled (escalated …)")
    failure: str | None = Field(description="outage | permanent | expired, while failed")
    attempts: int
    action: str | None = Field(description="what the decision was: reply, defer, away …")
    explain: list[str] = Field(description="the decision's reasons, in the order weighed")
    delay_s: float | None = Field(description="the human delay chosen before answering")
    decided_at: datetime
    reply_at: datetime = Field(description="when it was (or is) due")
    finished_at: datetime | None
    voice: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


class MessagesOut(ApiModel):
    chat: int
    messages: list[MessageOut]
    replies: list[ReplyOut] = Field(
        description="the reply jobs of this page's messages (their `reply_id`), once each"
    )
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


class AudioPath(ApiModel):
    message_id: RowId


class AudioQuery(ApiModel):
    account: str = AccountName


class ConversationsQuery(ApiModel):
    account: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="one account or channel instance (default: all)",
    )
    chat: PeerId | None = Field(None, description="one conversation (with `account`)")
    channel: Channel | None = None
    state: Literal["paused", "escalated", "failed"] | None = None
    q: str | None = Field(None, min_length=1, max_length=200, description="search")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class ConversationOut(ApiModel):
    account: str = Field(description="the account or channel instance (`account` elsewhere)")
    channel: str
    chat: int = Field(description="the peer id: `chat` of GET /messages, pause, settings")
    chat_key: str = Field(
        description="`chat` as a string, for JavaScript: a channel's conversation ids can be "
        "above 2^53, which a JavaScript number cannot hold exactly"
    )
    kind: str
    title: str | None
    username: str | None
    thread_id: str | None = Field(description="the conversation's id on its channel")
    paused: bool
    paused_until: datetime | None
    escalated: bool = Field(description="its newest reply job was handed to the owner")
    failed: int = Field(description="failed reply jobs (POST /replies/{id}/retry)")
    last_activity_at: datetime
    last_text: str | None = Field(description=f"the newest message, cut at {LAST_TEXT_CHARS}")


class ConversationsOut(ApiModel):
    conversations: list[ConversationOut]
    total: int
    limit: int
    offset: int


# --- views --------------------------------------------------------------------------------------


def _reply_out(detail: ReplyDetail) -> ReplyOut:
    decision = detail.decision
    explain = decision.get("explain")
    delay = decision.get("delay_s")
    return ReplyOut(
        id=detail.id,
        state=detail.state,
        reason=detail.reason,
        failure=detail.failure,
        attempts=detail.attempts,
        action=decision.get("action") if isinstance(decision.get("action"), str) else None,
        explain=[str(item) for item in explain] if isinstance(explain, list) else [],
        delay_s=float(delay) if isinstance(delay, int | float) else None,
        decided_at=detail.created_at,
        reply_at=detail.reply_at,
        finished_at=detail.finished_at,
        voice=detail.voice,
        prompt_tokens=detail.prompt_tokens,
        completion_tokens=detail.completion_tokens,
        cost_usd=detail.cost_usd,
    )


@routes.get("/messages", name="messages", summary="Stored history of a chat, newest first")
async def messages(request: web.Request, query: MessagesQuery) -> MessagesOut:
    repo = request.app[keys.DATABASE].repo
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    try:
        chat = await repo.get_chat_by_peer(account_id, query.chat)
    except NotFound:
        raise NotFound(f"no stored messages for chat {query.chat}") from None
    rows = await repo.history(account_id, chat.id, limit=query.limit, before_id=query.before)
    details = await repo.reply_details([r.reply_id for r in rows if r.reply_id is not None])
    knowledge = {  # what each reply was given and used from the knowledge base (its flags)
        reply_id: found
        for reply_id, detail in details.items()
        if isinstance(found := detail.flags.get("knowledge"), dict)
    }
    items = [
        MessageOut(
            id=row.id,
            telegram_id=row.tg_message_id,
            direction=row.direction.value,
            kind=row.kind.value,
            text=row.text,
            transcript=row.transcript,
            duration=row.duration,
            reply_to=row.reply_to_tg_id,
            date=row.date,
            state=row.state.value,
            state_reason=row.state_reason,
            reply_id=row.reply_id,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=row.cost_usd,
            sources=knowledge.get(row.reply_id) if row.bubble_index == 0 else None,
        )
        for row in rows
    ]
    next_before = items[-1].id if len(items) == query.limit else None
    return MessagesOut(
        chat=query.chat,
        messages=items,
        replies=[_reply_out(details[key]) for key in sorted(details)],
        next_before=next_before,
    )


def _audio_type(data: bytes) -> str:
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    return "application/octet-stream"


@routes.get(
    "/messages/{message_id}/audio",
    name="message_audio",
    summary="A voice note's sound",
    media_type="audio/ogg",
)
async def message_audio(request: web.Request, path: AudioPath, query: AudioQuery) -> web.Response:
    """The sound of a stored voice note or audio message of a Telegram account (incoming, or
    the twin's own voice reply), downloaded from Telegram now: twin keeps the transcript, not
    the sound. 404: no such message of the account, not a voice note or audio of at most an
    hour, not a Telegram account's, or gone from Telegram."""
    repo = request.app[keys.DATABASE].repo
    account_id = await request.app[keys.DIRECTORY].id_of(query.account)
    gone = NotFound(f"message {path.message_id} has no sound to play")
    try:
        message = await repo.get_message(path.message_id)
    except NotFound:
        raise gone from None
    if (
        message.account_id != account_id
        or message.kind.value not in AUDIO_KINDS
        or message.tg_message_id is None
        or (message.duration or 0) > MAX_AUDIO_SECONDS
    ):
        raise gone
    if (await repo.get_account(query.account)).channel != "telegram":
        raise gone  # another channel's message: no Telegram account to read it with
    chat = await repo.get_chat(message.chat_id)
    account = await request.app[keys.ACCOUNTS].get(query.account)
    account.require_authorized()
    try:
        data = await account.download_media(chat.peer_id, message.tg_message_id)
    except InvalidInput:  # the message, or its media, is gone from Telegram
        raise gone from None
    return web.Response(
        body=data,
        content_type=_audio_type(data),
        headers={"Cache-Control": "private, max-age=3600"},
    )


@routes.get("/conversations", name="conversations", summary="Conversations across channels")
async def conversations(request: web.Request, query: ConversationsQuery) -> ConversationsOut:
    """Stored conversations of every account and channel instance (or `account`), newest
    activity first; `channel`, `state` and `q` (case-insensitive, any script) narrow them.
    A key bound to an account sees its own account's only."""
    account_ids = None
    if query.account is not None:
        account_ids = [await request.app[keys.DIRECTORY].id_of(query.account)]
    now = request.app[keys.CLOCK].now()
    rows, total = await request.app[keys.DATABASE].repo.list_conversations(
        account_ids=account_ids,
        peer_id=query.chat,
        channel=query.channel,
        state=query.state,
        search=(query.q or "").strip() or None,
        now=now,
        limit=query.limit,
        offset=query.offset,
    )
    return ConversationsOut(
        conversations=[
            ConversationOut(
                account=row.account,
                channel=row.channel,
                chat=row.peer_id,
                chat_key=str(row.peer_id),
                kind=row.kind,
                title=row.title,
                username=row.username,
                thread_id=row.external_id,
                paused=row.paused_until is not None and row.paused_until > now,
                paused_until=row.paused_until,
                escalated=row.escalated,
                failed=row.failed,
                last_activity_at=row.last_activity_at,
                last_text=(row.last_text or "")[:LAST_TEXT_CHARS] or None,
            )
            for row in rows
        ],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
