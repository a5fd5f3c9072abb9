"""Which governor category each Telethon request falls in, and which sends go to the owner's own
Saved Messages (pure: Telethon's TL objects, no connection)."""

from __future__ import annotations

import pytest
from telethon.tl import functions, types

from twin.adapters.telegram.guard import call_category, to_self
from twin.domain.safety import CallCategory

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
