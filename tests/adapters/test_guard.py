"""Which governor category each Telethon request falls in, and which sends go to the owner's own
Saved Messages (pure: Telethon's TL objects, no connection)."""

from __future__ import annotations

import pytest
from telethon import errors
from telethon.tl import functions, types

from twin.adapters.telegram.client import TwinTelegramClient
from twin.adapters.telegram.guard import call_category, to_self
from twin.domain.safety import CallCategory
from twin.errors import RateLimited

PEER = types.InputPeerUser(user_id=5, access_hash=1)


@pytest.mark.parametrize(
    ("request_", "category"),
    [
        (functions.messages.SendMessageRequest(peer=PEER, message="hi"), CallCategory.SEND),
        (
            functions.messages.SendMediaRequest(
                peer=PEER, media=types.InputMediaEmpty(), message=""
            ),
            CallCategory.SEND,
        ),
        (functions.contacts.ResolveUsernameRequest(username="carl"), CallCategory.RESOLVE),
        (
            functions.messages.GetDialogsRequest(
                offset_date=None, offset_id=0, offset_peer=PEER, limit=10, hash=0
            ),
            CallCategory.DIALOGS,
        ),
        (
            functions.messages.GetHistoryRequest(
                peer=PEER,
                offset_id=0,
                offset_date=None,
                add_offset=0,
                limit=1,
                max_id=0,
                min_id=0,
                hash=0,
            ),
            CallCategory.HISTORY,
        ),
        (
            functions.upload.SaveFilePartRequest(file_id=1, file_part=0, bytes=b"x"),
            CallCategory.UPLOAD,
        ),
        (
            functions.messages.SetTypingRequest(peer=PEER, action=types.SendMessageTypingAction()),
            CallCategory.OTHER,
        ),
        (
            functions.InvokeWithoutUpdatesRequest(
                functions.messages.SendMessageRequest(peer=PEER, message="hi")
            ),
            CallCategory.SEND,
        ),
    ],
)
def test_each_request_has_its_category(request_, category) -> None:
    assert call_category(request_) is category


def test_sends_to_saved_messages_are_to_self() -> None:
    send = functions.messages.SendMessageRequest
    assert to_self(send(peer=types.InputPeerSelf(), message="note"), None)
    assert to_self(send(peer=types.InputPeerUser(user_id=9, access_hash=0), message="n"), 9)
    assert not to_self(send(peer=PEER, message="hi"), 9)
    assert not to_self(send(peer=PEER, message="hi"), None)
    assert not to_self(functions.contacts.ResolveUsernameRequest(username="me"), 9)


class RefusingGuard:
    """A governor that refuses every call (twin.ports.CallGuard)."""

    def __init__(self) -> None:
        self.admitted: list[tuple[CallCategory, str]] = []

    async def admit(self, category: CallCategory, *, to_self: bool = False, method: str = ""):
        self.admitted.append((category, method))
        raise RateLimited("safety: wait", retry_after=42.5)

    async def flood_wait(self, category: CallCategory, seconds: float, method: str = "") -> bool:
        raise AssertionError("never reached: the call is refused before Telegram")

    async def spam_limited(self, category: CallCategory, error: str) -> None:
        raise AssertionError("never reached")


async def test_a_refused_call_is_refused_in_the_callers_terms() -> None:
    """Our callers hear RateLimited; Telethon's own machinery (the update loop asking for the
    difference) hears its FloodWaitError, which it survives (and rpc_errors translates back)."""
    client = TwinTelegramClient(None, 1, "hash")  # a memory session, never connected
    client.guard = guard = RefusingGuard()
    with pytest.raises(RateLimited):
        await client._call(None, functions.messages.SendMessageRequest(peer=PEER, message="x"))
    difference = functions.updates.GetDifferenceRequest(pts=1, date=None, qts=0)
    with pytest.raises(errors.FloodWaitError) as refused:
        await client._call(None, difference)
    assert refused.value.seconds == 43
    assert guard.admitted == [
        (CallCategory.SEND, "SendMessageRequest"),
        (CallCategory.OTHER, "GetDifferenceRequest"),
    ]
