"""Who the twin may answer, after Telegram Business chatbot "recipients".

Differences from Telegram, on purpose:
- The two category axes are filters, not a union: `non_contacts = false` removes non-contacts
  whatever `new_chats` says. With every flag defaulting to true, each flag then reads as
  "allow X", and turning one off removes exactly that category.
- When all four flags are off the twin answers only the include list ("only selected chats").
- Groups are never Business-chatbot territory; here they are answered only when the owner is
  mentioned or replied to, and `groups_when_mentioned = false` turns them off entirely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from twin.domain.models import ChatKind, IncomingMessage, SkipReason

RecipientKey = int | str

_USERNAME = re.compile(r"@?([A-Za-z][A-Za-z0-9_]{2,31})")
_CHAT_ID = re.compile(r"-?\d+")


def normalize_recipient(entry: int | str, *, field_name: str = "recipient") -> RecipientKey:
    """A chat/user id stays an int; a username becomes "@lowercase" (Telegram ignores case)."""
    if isinstance(entry, bool):  # bool is an int subclass; `include = [true]` is a typo
        raise ValueError(f"{field_name}: {entry!r} is not a chat id or @username")
    if isinstance(entry, int):
        return entry
    text = entry.strip()
    if _CHAT_ID.fullmatch(text):
        return int(text)
    match = _USERNAME.fullmatch(text)
    if match is None:
        raise ValueError(f"{field_name}: {entry!r} is not a chat id or @username")
    return "@" + match.group(1).lower()


def _normalize_all(entries: Iterable[int | str], field_name: str) -> frozenset[RecipientKey]:
    return frozenset(normalize_recipient(e, field_name=field_name) for e in entries)


@dataclass(frozen=True, slots=True)
class RecipientRules:
    existing_chats: bool = True
    new_chats: bool = True
    contacts: bool = True
    non_contacts: bool = True
    include: frozenset[RecipientKey] = field(default_factory=frozenset)
    exclude: frozenset[RecipientKey] = field(default_factory=frozenset)
    groups_when_mentioned: bool = True

    def __post_init__(self) -> None:
        # Accept any iterable of ids/usernames so config lists can be passed straight in.
        object.__setattr__(self, "include", _normalize_all(self.include, "twin.include"))
        object.__setattr__(self, "exclude", _normalize_all(self.exclude, "twin.exclude"))

    @property
    def only_included(self) -> bool:
        return not (self.existing_chats or self.new_chats or self.contacts or self.non_contacts)


def _keys(message: IncomingMessage) -> set[RecipientKey]:
    keys: set[RecipientKey] = {message.chat_id, message.sender.id}
    if message.sender.username:
        keys.add("@" + message.sender.username.lstrip("@").lower())
    return keys


def check_recipient(
    rules: RecipientRules, message: IncomingMessage, *, chat_is_new: bool
) -> SkipReason | None:
    """None if the twin may answer this message, else why not."""
    # Hard rules first: no configuration can make the twin talk to these.
    if message.is_service:
        return SkipReason.SERVICE
    if message.chat_kind is ChatKind.CHANNEL:
        return SkipReason.CHANNEL
    if message.chat_kind is ChatKind.SAVED:
        return SkipReason.SAVED_MESSAGES
    if message.sender.is_self:
        return SkipReason.OWN_MESSAGE
    if message.sender.is_bot:
        return SkipReason.BOT

    keys = _keys(message)
    if keys & rules.exclude:
        return SkipReason.EXCLUDED

    if message.is_group:
        # Include lists are about private chats; in a group the twin still needs to be addressed.
        if not rules.groups_when_mentioned:
            return SkipReason.GROUPS_DISABLED
        if not (message.mentions_owner or message.replies_to_owner):
            return SkipReason.GROUP_NOT_ADDRESSED
        return None

    if keys & rules.include:
        return None
    if rules.only_included:
        return SkipReason.NOT_INCLUDED
    if message.sender.is_contact and not rules.contacts:
        return SkipReason.CONTACT
    if not message.sender.is_contact and not rules.non_contacts:
        return SkipReason.NON_CONTACT
    if chat_is_new and not rules.new_chats:
        return SkipReason.NEW_CHAT
    if not chat_is_new and not rules.existing_chats:
        return SkipReason.EXISTING_CHAT
    return None
