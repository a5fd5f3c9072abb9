"""Who the twin may answer, after Telegram Business "recipients" (BusinessRecipients: flags
existing_chats, new_chats, contacts, non_contacts, exclude_selected, and a list of users).

Telegram's documented semantics: the four flags and the users list *select* chats, as a union
(a chat is selected when it is in any ticked category or in the list). With exclude_selected
off ("Only selected chats") the selected chats are answered; with it on ("All chats except…")
every private chat except the selected ones is. Connected business bots also have a list of
users that is always excluded.

Here (`check_recipient`):
- `exclude_selected = true` is Telegram's "All chats except…" exactly: a chat in any ticked
  category is left out, every other one is answered.
- `exclude_selected = false` (the default) differs, on purpose and since the first version: the
  two category axes are filters, not a union — `non_contacts = false` removes non-contacts
  whatever `new_chats` says. With every flag defaulting to true, each flag reads as "allow X"
  and turning one off removes exactly that category (in Telegram, turning one flag off while
  the others stay on changes nothing: the union still covers every chat). Telegram and the twin
  agree when all four flags are on (everyone) or all off (only the include list); a mix the
  twin reads as "contact axis AND new/existing axis", Telegram as "either".
- The lists keep their meaning in both modes: `include` is always answered (Telegram's users
  list with exclude_selected off), `exclude` never is and wins over everything (Telegram's
  users list with exclude_selected on, and a business bot's always-excluded users).
- Groups are never Business-chatbot territory; here they are answered only when the owner is
  mentioned or replied to, and `groups_when_mentioned = false` turns them off entirely. The
  category flags and `exclude_selected` are about private chats only.
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
    # Telegram's "All chats except…": the ticked categories are left out instead of allowed.
    exclude_selected: bool = False

    def __post_init__(self) -> None:
        # Accept any iterable of ids/usernames so config lists can be passed straight in.
        object.__setattr__(self, "include", _normalize_all(self.include, "twin.include"))
        object.__setattr__(self, "exclude", _normalize_all(self.exclude, "twin.exclude"))

    @property
    def only_included(self) -> bool:
        return not self.exclude_selected and not (
            self.existing_chats or self.new_chats or self.contacts or self.non_contacts
        )


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
    if rules.exclude_selected:
        return _left_out(rules, message.sender.is_contact, chat_is_new)
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


def _left_out(rules: RecipientRules, is_contact: bool, chat_is_new: bool) -> SkipReason | None:
    """For "All chats except…": the first ticked category the chat is in (None: in none)."""
    if is_contact and rules.contacts:
        return SkipReason.CONTACT
    if not is_contact and rules.non_contacts:
        return SkipReason.NON_CONTACT
    if chat_is_new and rules.new_chats:
        return SkipReason.NEW_CHAT
    if not chat_is_new and rules.existing_chats:
        return SkipReason.EXISTING_CHAT
    return None


_WHY = {
    SkipReason.SERVICE: "service message (join, pin, call…): nothing to answer",
    SkipReason.CHANNEL: "channels are never answered",
    SkipReason.SAVED_MESSAGES: "Saved Messages is the owner's own chat",
    SkipReason.OWN_MESSAGE: "the owner's own message",
    SkipReason.BOT: "the sender is a bot",
    SkipReason.EXCLUDED: "chat or sender is on the exclude list",
    SkipReason.GROUPS_DISABLED: "group chats are off (groups_when_mentioned = false)",
    SkipReason.GROUP_NOT_ADDRESSED: "group message that neither mentions nor replies to the owner",
    SkipReason.NOT_INCLUDED: "only included chats are answered and this one is not included",
    SkipReason.CONTACT: "contacts are off (contacts = false)",
    SkipReason.NON_CONTACT: "the sender is not a contact (non_contacts = false)",
    SkipReason.NEW_CHAT: "new chats are off (new_chats = false)",
    SkipReason.EXISTING_CHAT: "existing chats are off (existing_chats = false)",
}
# exclude_selected = true ("All chats except…"): a ticked category is left out.
_LEFT_OUT_WHY = {
    SkipReason.CONTACT: "contacts are left out (exclude_selected = true, contacts = true)",
    SkipReason.NON_CONTACT: (
        "non-contacts are left out (exclude_selected = true, non_contacts = true)"
    ),
    SkipReason.NEW_CHAT: "new chats are left out (exclude_selected = true, new_chats = true)",
    SkipReason.EXISTING_CHAT: (
        "existing chats are left out (exclude_selected = true, existing_chats = true)"
    ),
}


def recipient_why(rules: RecipientRules, reason: SkipReason) -> str:
    """The explain line of a reason `check_recipient` gave under these rules."""
    why = _LEFT_OUT_WHY.get(reason) if rules.exclude_selected else None
    return why or _WHY.get(reason, str(reason))
