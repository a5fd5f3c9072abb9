"""Conversation value objects the brain works on: turns, the owner's persona, the style profile.

Pure data (stdlib only). A chat is a list of `Turn`s, oldest first; the contact's words and the
owner's words are kept apart by `role` so the prompt builder can fence the contact's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

__all__ = [
    "ChatId",
    "Formality",
    "Persona",
    "Role",
    "StyleExample",
    "StyleProfile",
    "Turn",
    "TurnKind",
    "latest_from_contact",
]

Role = Literal["contact", "owner"]
TurnKind = Literal["text", "voice"]
Formality = Literal["informal", "formal", "unknown"]
ChatId = int | str


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a chat. A voice turn carries its transcript as `text`."""

    role: Role
    text: str
    at: datetime
    kind: TurnKind = "text"

    def __post_init__(self) -> None:
        if self.role not in ("contact", "owner"):
            raise ValueError(f"role must be 'contact' or 'owner', not {self.role!r}")
        if self.kind not in ("text", "voice"):
            raise ValueError(f"kind must be 'text' or 'voice', not {self.kind!r}")


@dataclass(frozen=True, slots=True)
class Persona:
    """Who the twin speaks for.

    `facts` are things about the owner the twin may use when relevant (never recited wholesale);
    `boundaries` are hard rules ("never agree to lend money"). `disclose_assistant` says whether
    the twin may say it is an assistant answering for the owner. `language` is the default reply
    language when the contact's own language is unclear (e.g. "ru"); `instructions` is free text
    from the owner's configuration.
    """

    owner_name: str
    facts: tuple[str, ...] = ()
    boundaries: tuple[str, ...] = ()
    disclose_assistant: bool = False
    language: str | None = None
    instructions: str = ""


@dataclass(frozen=True, slots=True)
class StyleExample:
    """One representative owner message and the chat it was written in."""

    chat_id: ChatId
    text: str


@dataclass(frozen=True)
class StyleProfile:
    """Statistics of how the owner writes (see twin.domain.style.compute_style).

    Rates are fractions of the owner's messages in [0, 1]. `formality` maps a chat id to
    "informal" (ты), "formal" (вы) or "unknown". `examples` come from many chats: use
    `for_chat(chat_id)` before putting a profile into a prompt so nothing from another chat leaks
    into it.
    """

    message_count: int = 0
    length_median: int = 0
    length_p90: int = 0
    sentences_per_message: float = 0.0
    multiline_rate: float = 0.0
    capitalized_rate: float = 0.0
    trailing_period_rate: float = 0.0
    exclamation_rate: float = 0.0
    question_rate: float = 0.0
    ellipsis_rate: float = 0.0
    paren_smiley_rate: float = 0.0
    emoji_rate: float = 0.0
    top_emoji: tuple[str, ...] = ()
    languages: tuple[tuple[str, float], ...] = ()
    greetings: tuple[str, ...] = ()
    signoffs: tuple[str, ...] = ()
    formality: Mapping[ChatId, Formality] = field(default_factory=dict)
    examples: tuple[StyleExample, ...] = ()

    def for_chat(self, chat_id: ChatId | None) -> StyleProfile:
        """The profile as it may be shown in `chat_id`'s prompt: only that chat's formality and
        examples are kept (none at all for `None`)."""
        formality: dict[ChatId, Formality] = {}
        if chat_id is not None and chat_id in self.formality:
            formality[chat_id] = self.formality[chat_id]
        examples = tuple(e for e in self.examples if chat_id is not None and e.chat_id == chat_id)
        return replace(self, formality=formality, examples=examples)


def latest_from_contact(turns: Sequence[Turn]) -> str:
    """The contact's newest messages, after the owner's last one, as one text ("" when the
    owner spoke last): what an answer answers."""
    latest: list[str] = []
    for turn in reversed(turns):
        if turn.role != "contact":
            break
        latest.append(turn.text)
    return " ".join(reversed(latest))
