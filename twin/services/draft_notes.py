"""Where the owner sees a draft and answers it, besides `GET /drafts` (`[twin] draft_notify`):

- **from a bot** of the twin's (`auto`, when the twin has a connected bot): the bot sends the
  owner the draft with inline buttons *Send* / *Edit* / *Skip*; *Edit* asks for the owner's text
  as a reply to the bot's message, and that reply is sent instead (`+` and `-` as below). Only
  the owner's own presses and replies count (the Telegram user of the draft's account); anyone
  else's press is refused and taken in as nothing. The owner must have started the bot once (a
  bot cannot write first); until then — or whenever the bot cannot reach them, or it is gone —
  the note goes to Saved Messages.
- **in Saved Messages** (`saved`, and the fallback): a note the owner answers with `+` (send),
  `-` (skip) or the text to send instead.

Exactly once: the note's random id is stored with the draft, and where it goes (`notice_route`,
`notice_bot_id`) is stored before it is first sent, so a resend after a crash or an outage takes
the same way and Telegram turns it into the one note. A note is shown in the background: the
draft stands in `GET /drafts` whether or not it went out. Notes kept back (an outage) are sent
again by every pass of the drafts task. With several processes on one PostgreSQL a note is
sent only by the process serving the bot (or account) it goes from: the draft's process
leaves it to that one, whose drafts task another process's `draft.created` wakes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from twin.db.records_drafts import DraftRecord
from twin.domain.commands import OwnerText
from twin.domain.models import Direction, IncomingMessage, SendResult
from twin.errors import (
    AdapterError,
    Conflict,
    InvalidInput,
    NotFound,
    ServedElsewhere,
    StorageUnavailable,
    TelegramRefused,
)
from twin.locks import KeyedLocks
from twin.ports import Accounts, Store
from twin.services.directory import AccountDirectory
from twin.services.pipeline.caches import Behaviours

if TYPE_CHECKING:
    from twin.services.drafts import Drafts

log = logging.getLogger("twin.drafts")

NOTICE_EXCERPT = 200  # of the contact's message, in the note
BUTTON_PREFIX = "twin:draft:"
ACTIONS = ("send", "edit", "skip")

BotFor = Callable[[int], Awaitable[tuple[int, str] | None]]


class DraftNotes:
    def __init__(
        self, store: Store, directory: AccountDirectory, behaviours: Behaviours, drafts: Drafts
    ) -> None:
        self._store = store
        self._directory = directory
        self._behaviours = behaviours
        self._drafts = drafts
        self._tasks: set[asyncio.Task[None]] = set()
        # one note on its way per draft (the note being shown and a pass's resend)
        self._sending = KeyedLocks()
        self._failed: set[int] = set()  # drafts whose note failed (warned about once)
        self.accounts: Accounts | None = None  # the Telegram accounts: notes go out there
        # the twin's connected bot of an account (its account id and name), None: no bot
        self.bot_for: BotFor | None = None

    # -- showing -------------------------------------------------------------------------------
    def show(self, draft_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self.notice(draft_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the notes being sent (shutdown, tests); at shutdown at most `timeout`,
        then cancelled (a note not sent is resent at the next start: its random id is kept)."""
        if not self._tasks:
            return
        pending = list(self._tasks)
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def resend(self) -> None:
        """Notes a crash or an outage kept back (stored random id, no message id): sent again,
        the same way, which Telegram turns into the one note if it had arrived."""
        mine = self.accounts.mine() if self.accounts is not None else None
        for draft in await self._store.unnoticed_drafts(accounts=mine):
            await self.notice(draft.id)

    async def notice(self, draft_id: int) -> None:
        """Send the draft's note, unless it went out already, or it goes from an account or
        bot another process serves: that process sends it (its drafts pass, woken by the
        draft's event)."""
        async with self._sending.hold(draft_id):  # a second one finds it sent
            await self._notice(draft_id)

    async def _notice(self, draft_id: int) -> None:
        try:
            draft = await self._store.get_draft(draft_id)
            if draft.notice_random_id is None or draft.notice_message_id is not None:
                return
            if self.accounts is None or draft.state != "pending":
                return
            if draft.notice_route is None:
                draft = await self._route(draft)
            asked = [
                m.text or ""
                for m in await self._store.reply_messages(draft.reply_id)
                if m.direction is Direction.INCOMING
            ]
            excerpt = asked[-1] if asked else ""
            if draft.notice_route == "bot":
                if draft.notice_bot_id is not None and await self._from_bot(draft, excerpt):
                    return
                # the bot cannot reach the owner, or is gone: Saved Messages, for good
                draft = await self._store.route_draft_notice(draft.id, "saved", None, again=True)
            await self.accounts.require_here(draft.account)
            account = await self.accounts.get(draft.account, connect=False)
            note = notice_text(draft, excerpt)
            sent = await account.send_text("me", note, random_id=draft.notice_random_id)
            await self._sent(draft, sent)
        except ServedElsewhere as exc:  # sent by the process serving it
            log.debug("draft %s: its note goes from another process (%s)", draft_id, exc)
        except Exception as exc:  # the draft stands in GET /drafts whether or not this went out
            # told once a draft (every drafts pass tries again): the rest is debug
            level = logging.DEBUG if draft_id in self._failed else logging.WARNING
            self._failed.add(draft_id)
            log.log(level, "draft %s: its note was not sent: %s", draft_id, exc)

    async def _route(self, draft: DraftRecord) -> DraftRecord:
        """Decide (and store) the way of the draft's note: the twin's bot, or Saved Messages."""
        chat = await self._store.get_chat(draft.chat_id)
        notify = (await self._behaviours.of_chat(self._store, chat)).twin.draft_notify
        bot = None
        if notify == "auto" and self.bot_for is not None:
            bot = await self.bot_for(draft.account_id)
        route, bot_id = ("bot", bot[0]) if bot is not None else ("saved", None)
        return await self._store.route_draft_notice(draft.id, route, bot_id)

    async def _from_bot(self, draft: DraftRecord, excerpt: str) -> bool:
        """The note from the bot, with its buttons; False when the bot cannot reach the owner
        (never started, blocked, gone): the note then goes to Saved Messages."""
        assert self.accounts is not None and draft.notice_random_id is not None
        owner = (await self._store.get_account(draft.account)).tg_user_id
        try:
            name = await self._directory.name_of(draft.notice_bot_id or 0)
            await self.accounts.require_here(name)  # ServedElsewhere: that process sends it
            bot = await self.accounts.get(name, connect=False)
            if owner is None:
                raise InvalidInput("owner", "the account's Telegram user is not known yet")
            buttons = [
                [
                    ("Send", f"{BUTTON_PREFIX}{draft.id}:send"),
                    ("Edit", f"{BUTTON_PREFIX}{draft.id}:edit"),
                    ("Skip", f"{BUTTON_PREFIX}{draft.id}:skip"),
                ]
            ]
            note = notice_text(draft, excerpt, bot=True)
            sent = await bot.send_text(
                owner, note, random_id=draft.notice_random_id, buttons=buttons
            )
        except (InvalidInput, NotFound, TelegramRefused) as exc:
            log.info("draft %s: the bot cannot reach the owner (%s): Saved Messages", draft.id, exc)
            return False
        await self._sent(draft, sent)
        return True

    async def _sent(self, draft: DraftRecord, sent: SendResult) -> None:
        """The note is out: its message id stored (what the owner's reply is matched by). A
        resend after a crash that Telegram recognised (the same random id) tells no id: 0 is
        stored, so it is not sent again at every start — the bot's note is then still found by
        its buttons (`on_bot_message`)."""
        if sent.message_id is not None or sent.duplicate:
            await self._store.set_draft_notice(draft.id, sent.message_id or 0)
            self._failed.discard(draft.id)

    # -- the owner's answers -------------------------------------------------------------------
    async def on_saved_reply(self, text: OwnerText) -> bool:
        """The owner answered a draft's note in Saved Messages: `+` sends it, `-` skips it,
        anything else is sent instead of it. False when the message answers no draft."""
        if text.reply_to is None:
            return False
        account_id = await self._directory.id_of(text.account)
        draft = await self._store.draft_by_notice(account_id, text.reply_to)
        if draft is None:
            return False
        answer = text.text.strip()
        action = "skip" if answer == "-" else "send"
        await self._decide(draft, action, None if answer == "+" else answer)
        return True

    async def on_button(self, account: str, user_id: int, data: bytes) -> str | None:
        """A button of a bot's message pressed: a draft's Send / Edit / Skip is decided here
        (its answer, the toast the presser sees); None when it is not a draft's button."""
        if not data.startswith(BUTTON_PREFIX.encode()):
            return None
        try:
            draft_id, action = data.decode()[len(BUTTON_PREFIX) :].split(":")
            draft = await self._store.get_draft(int(draft_id))
        except (ValueError, NotFound):
            return "This draft is gone."
        if not await self._owners(draft, account, user_id):
            return "Only the owner decides the twin's drafts."
        if action not in ACTIONS:
            return "Unknown action."
        if draft.state != "pending":
            return f"Already {draft.state}."
        if action == "edit":
            return "Reply to the draft's message with the text to send instead."
        return await self._decide(draft, action, None)

    async def on_bot_message(self, message: IncomingMessage) -> bool:
        """The owner's reply to a draft's message from a bot: their text is sent instead.
        False (taken in as usual) for any other message. StorageUnavailable is raised (intake
        holds the message and asks again); any other failure is logged, and the message is
        taken in."""
        try:
            return await self._bot_message(message)
        except StorageUnavailable:
            raise
        except Exception:
            log.exception("a reply in a bot's chat could not be matched to a draft")
            return False

    async def _bot_message(self, message: IncomingMessage) -> bool:
        if message.reply_to is None or not message.text.strip():
            return False
        try:
            bot_id = await self._directory.id_of(message.account)
        except NotFound:
            return False
        draft = await self._store.draft_by_bot_notice(bot_id, message.reply_to)
        if draft is None:
            draft = await self._by_buttons(message)
        if draft is None or not await self._owners(draft, message.account, message.sender.id):
            return False
        answer = message.text.strip()  # + and - as in Saved Messages
        action = "skip" if answer == "-" else "send"
        # a database outage is raised: intake holds the message and asks again
        await self._decide(draft, action, None if answer in ("+", "-") else answer, held=True)
        return True

    async def _by_buttons(self, message: IncomingMessage) -> DraftRecord | None:
        """The draft of a bot's note whose id was never stored (a resend after a crash): read
        from the replied message's own buttons."""
        if self.accounts is None or message.reply_to is None:
            return None
        try:
            bot = await self.accounts.get(message.account, connect=False)
            buttons = await bot.button_data(message.chat_id, message.reply_to)
        except (AdapterError, NotFound) as exc:
            log.info("a reply to a bot's message: its buttons unread (%s)", exc)
            return None
        prefix = BUTTON_PREFIX.encode()
        for data in buttons:
            if data.startswith(prefix):
                try:
                    return await self._store.get_draft(int(data[len(prefix) :].split(b":")[0]))
                except (ValueError, NotFound):
                    return None
        return None

    async def _owners(self, draft: DraftRecord, bot: str, user_id: int) -> bool:
        """Whether `user_id`, in the chat of `bot`, is the owner of the draft's account."""
        if draft.notice_bot_id is None or draft.notice_bot_id != await self._directory.id_of(bot):
            return False
        owner = (await self._store.get_account(draft.account)).tg_user_id
        return owner is not None and owner == user_id

    async def _decide(
        self, draft: DraftRecord, action: str, text: str | None, *, held: bool = False
    ) -> str:
        """Send or skip the draft; the answer the owner is shown. `held`: a database outage
        is raised (the caller keeps the owner's answer and tries again) instead of told."""
        try:
            if action == "skip":
                await self._drafts.skip(draft.id)
                return "Skipped."
            await self._drafts.send(draft.id, text)
            return "Sent." if text is None else "Your text is sent instead."
        except (Conflict, InvalidInput, NotFound) as exc:
            log.info("draft %s: the owner's answer changed nothing: %s", draft.id, exc)
            return f"Nothing changed: {exc}"
        except StorageUnavailable as exc:  # Telegram will not deliver the answer again
            if held:
                raise
            log.warning(
                "draft %s: the owner's answer was lost to a database outage (%s): "
                "answer it again, or use POST /drafts/%s/send",
                draft.id,
                exc,
                draft.id,
            )
            return "The database is unavailable: try again in a moment."


def notice_text(draft: DraftRecord, asked: str, *, bot: bool = False) -> str:
    """The note that shows a draft to the owner (in Saved Messages, or from a bot)."""
    who = draft.title or str(draft.peer_id)
    excerpt = asked if len(asked) <= NOTICE_EXCERPT else asked[: NOTICE_EXCERPT - 1] + "…"
    how = (
        "Send it, skip it, or press Edit and reply to this message with your own text."
        if bot
        else "Reply to this message: + to send it, - to skip it, or your own text to send instead."
    )
    return (
        f"twin drafted a reply to {who}"
        + (f" («{excerpt}»)" if excerpt else "")
        + f":\n\n{draft.text}\n\n{how}"
    )
