"""Handlers for messages.*: send, media, history, dialogs, typing, reads, edit, delete, groups
(and channels.getChannels, which only says that a channel is unknown: there are none).

Why the response shapes: Telethon reconciles its own sends from the *result* (private text →
UpdateShortSentMessage; media and group sends → Updates with UpdateMessageID + UpdateNewMessage)
and feeds them into its pts bookkeeping, while every other session of every participant gets
the same change as a pushed Updates. A user's own message is therefore pushed to that user's
*other* sessions as an outgoing UpdateNewMessage, which is how a daemon notices its owner
typing from the phone.
"""

from __future__ import annotations

import hashlib

from telethon.tl import functions, types

from .rpc import Call, handler
from .state import Account, Dialog, RpcFailure, peer_key_of, peer_of
from .tl import utf16_len

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024


def _reply_id(reply_to: object) -> int | None:
    if isinstance(reply_to, types.InputReplyToMessage):
        return reply_to.reply_to_msg_id
    return None


def _sent_updates(call: Call, me: Account, sent, random_id: int | None) -> types.Updates:
    updates = [types.UpdateMessageID(id=sent.message.id, random_id=random_id), sent.update]
    return call.server.updates_for(me.id, updates)


@handler(functions.messages.SendMessageRequest)
def send_message(call: Call, req: functions.messages.SendMessageRequest) -> object:
    me = call.me()
    text = req.message or ""
    if not text.strip():
        raise RpcFailure(400, "MESSAGE_EMPTY")
    if utf16_len(text) > MAX_MESSAGE_LENGTH:
        raise RpcFailure(400, "MESSAGE_TOO_LONG")
    peer_key = call.peer_key(req.peer)
    copies = call.world.post_message(
        me, peer_key, text=text, entities=req.entities, reply_to_local=_reply_id(req.reply_to),
        random_id=req.random_id, silent=bool(req.silent), reply_markup=req.reply_markup,
    )
    call.server.fan_out(((c.user_id, c.update) for c in copies), exclude=call.conn)
    sent = copies[0]
    if peer_key > 0 and sent.message.reply_markup is None:
        return types.UpdateShortSentMessage(
            out=True, id=sent.message.id, pts=sent.update.pts, pts_count=1,
            date=sent.message.date, entities=sent.message.entities,
        )
    return _sent_updates(call, me, sent, req.random_id)


@handler(functions.messages.SendMediaRequest)
def send_media(call: Call, req: functions.messages.SendMediaRequest) -> types.Updates:
    me = call.me()
    text = req.message or ""
    if utf16_len(text) > MAX_CAPTION_LENGTH:
        raise RpcFailure(400, "MEDIA_CAPTION_TOO_LONG")
    peer_key = call.peer_key(req.peer)
    if req.random_id is not None and req.random_id in me.random_ids:
        raise RpcFailure(500, "RANDOM_ID_DUPLICATE")
    media = _input_media(call, req.media)
    copies = call.world.post_message(
        me, peer_key, text=text, entities=req.entities, media=media,
        reply_to_local=_reply_id(req.reply_to), random_id=req.random_id, silent=bool(req.silent),
    )
    call.server.fan_out(((c.user_id, c.update) for c in copies), exclude=call.conn)
    return _sent_updates(call, me, copies[0], req.random_id)


def _uploaded_bytes(call: Call, input_file: object) -> bytes:
    if not isinstance(input_file, types.InputFile | types.InputFileBig):
        raise RpcFailure(400, "FILE_PARTS_INVALID")
    data = call.world.assemble_upload(call.auth.auth_key.key_id, input_file.id, input_file.parts)
    checksum = getattr(input_file, "md5_checksum", "")
    if checksum and hashlib.md5(data).hexdigest() != checksum:
        raise RpcFailure(400, "MD5_CHECKSUM_INVALID")
    return data


def _input_media(call: Call, media: object) -> types.TypeMessageMedia:
    world = call.world
    if isinstance(media, types.InputMediaUploadedDocument):
        data = _uploaded_bytes(call, media.file)
        doc = world.store_document(data, media.mime_type, list(media.attributes or []))
        return _document_media(doc)
    if isinstance(media, types.InputMediaUploadedPhoto):
        photo = world.store_photo(_uploaded_bytes(call, media.file))
        return types.MessageMediaPhoto(photo=photo)
    if isinstance(media, types.InputMediaDocument | types.InputMediaPhoto):
        ref = media.id
        stored = world.files.get(getattr(ref, "id", None))
        if stored is None or stored.media.access_hash != ref.access_hash:
            raise RpcFailure(400, "MEDIA_INVALID")
        if isinstance(stored.media, types.Document):
            return _document_media(stored.media)
        return types.MessageMediaPhoto(photo=stored.media)
    raise RpcFailure(400, "MEDIA_INVALID")


def _document_media(doc: types.Document) -> types.MessageMediaDocument:
    voice = any(
        isinstance(a, types.DocumentAttributeAudio) and a.voice for a in doc.attributes
    )
    return types.MessageMediaDocument(document=doc, voice=voice or None)


# -- reading ----------------------------------------------------------------------------------


def _dialog_tl(me: Account, dialog: Dialog) -> types.Dialog:
    return types.Dialog(
        peer=peer_of(dialog.peer_key),
        top_message=dialog.top_message,
        read_inbox_max_id=dialog.read_inbox_max_id,
        read_outbox_max_id=dialog.read_outbox_max_id,
        unread_count=me.unread_count(dialog),
        unread_mentions_count=me.unread_mentions(dialog),
        unread_reactions_count=0,
        unread_poll_votes_count=0,
        notify_settings=types.PeerNotifySettings(),
    )


@handler(functions.messages.GetDialogsRequest)
def get_dialogs(call: Call, req: functions.messages.GetDialogsRequest) -> object:
    me = call.user_only()
    world = call.world
    dialogs = sorted(
        (d for d in me.dialogs.values() if d.message_ids),
        key=lambda d: d.top_message, reverse=True,
    )
    total = len(dialogs)
    if req.folder_id:  # nothing is ever archived here
        dialogs = []
    if req.offset_id:
        dialogs = [d for d in dialogs if d.top_message < req.offset_id]
    elif req.offset_date is not None and req.offset_date.timestamp() > 0:
        dialogs = [d for d in dialogs if me.messages[d.top_message].date < req.offset_date]
    limit = max(1, min(req.limit or 100, 100))
    page = dialogs[:limit]
    messages = [me.messages[d.top_message] for d in page]
    users, chats = world.entities_of(me.id, messages)
    result = {
        "dialogs": [_dialog_tl(me, d) for d in page],
        "messages": messages,
        "chats": chats,
        "users": users,
    }
    if len(dialogs) > limit:
        return types.messages.DialogsSlice(count=total, **result)
    return types.messages.Dialogs(**result)


@handler(functions.messages.GetPeerDialogsRequest)
def get_peer_dialogs(call: Call, req: functions.messages.GetPeerDialogsRequest) -> object:
    me = call.user_only()
    world = call.world
    dialogs, messages = [], []
    for dialog_peer in req.peers:
        if not isinstance(dialog_peer, types.InputDialogPeer):
            raise RpcFailure(400, "PEER_ID_INVALID")
        dialog = me.dialog(call.peer_key(dialog_peer.peer))
        dialogs.append(_dialog_tl(me, dialog))
        if dialog.top_message:
            messages.append(me.messages[dialog.top_message])
    users, chats = world.entities_of(me.id, [*messages, *(d for d in dialogs)])
    state = types.updates.State(
        pts=me.pts, qts=0, date=world.clock.date(), seq=0,
        unread_count=sum(me.unread_count(d) for d in me.dialogs.values()),
    )
    return types.messages.PeerDialogs(
        dialogs=dialogs, messages=messages, chats=chats, users=users, state=state
    )


@handler(functions.messages.GetHistoryRequest)
def get_history(call: Call, req: functions.messages.GetHistoryRequest) -> object:
    me = call.user_only()
    peer_key = call.peer_key(req.peer)
    page, total = call.world.history(
        me, peer_key, offset_id=req.offset_id, offset_date=req.offset_date,
        add_offset=req.add_offset, limit=req.limit, max_id=req.max_id, min_id=req.min_id,
    )
    users, chats = call.world.entities_of(me.id, page, peer_keys=[peer_key])
    if total > len(page):
        return types.messages.MessagesSlice(
            count=total, messages=page, topics=[], chats=chats, users=users
        )
    return types.messages.Messages(messages=page, topics=[], chats=chats, users=users)


@handler(functions.messages.GetMessagesRequest)
def get_messages(call: Call, req: functions.messages.GetMessagesRequest) -> object:
    me = call.me()
    found = []
    for ref in req.id:
        message = None
        if isinstance(ref, types.InputMessageID):
            message = me.messages.get(ref.id)
        elif isinstance(ref, types.InputMessageReplyTo):
            origin = me.messages.get(ref.id)
            reply = getattr(origin, "reply_to", None)
            if reply is not None:
                message = me.messages.get(reply.reply_to_msg_id)
        found.append(message or types.MessageEmpty(id=getattr(ref, "id", 0)))
    users, chats = call.world.entities_of(me.id, found)
    return types.messages.Messages(messages=found, topics=[], chats=chats, users=users)


# -- typing and read receipts ---------------------------------------------------------------


@handler(functions.messages.SetTypingRequest)
def set_typing(call: Call, req: functions.messages.SetTypingRequest) -> bool:
    me = call.me()
    peer_key = call.peer_key(req.peer)
    if peer_key > 0:
        if peer_key != me.id:
            call.deliver_short(peer_key, types.UpdateUserTyping(user_id=me.id, action=req.action))
        return True
    group = call.world.groups[-peer_key]
    for member in group.member_ids:
        if member != me.id:
            call.deliver_short(member, types.UpdateChatUserTyping(
                chat_id=group.id, from_id=types.PeerUser(me.id), action=req.action
            ))
    return True


@handler(functions.messages.ReadHistoryRequest)
def read_history(call: Call, req: functions.messages.ReadHistoryRequest) -> object:
    me = call.user_only()
    pts, pts_count, produced = call.world.read_history(me, call.peer_key(req.peer), req.max_id)
    call.server.fan_out(produced, exclude=call.conn)
    return types.messages.AffectedMessages(pts=pts, pts_count=pts_count)


@handler(functions.messages.ReadMentionsRequest)
def read_mentions(call: Call, req: functions.messages.ReadMentionsRequest) -> object:
    me = call.me()
    call.peer_key(req.peer)
    return types.messages.AffectedHistory(pts=me.pts, pts_count=0, offset=0)


@handler(functions.messages.ReadMessageContentsRequest)
def read_message_contents(call: Call, _req: object) -> object:
    return types.messages.AffectedMessages(pts=call.me().pts, pts_count=0)


# -- edit and delete ------------------------------------------------------------------------------


@handler(functions.messages.EditMessageRequest)
def edit_message(call: Call, req: functions.messages.EditMessageRequest) -> types.Updates:
    me = call.me()
    peer_key = call.peer_key(req.peer)
    message = me.messages.get(req.id)
    if message is None or peer_key_of(message.peer_id) != peer_key:
        raise RpcFailure(400, "MESSAGE_ID_INVALID")
    if req.message is None or req.media is not None:
        raise RpcFailure(400, "MESSAGE_NOT_MODIFIED")
    if not req.message.strip():
        raise RpcFailure(400, "MESSAGE_EMPTY")
    produced = call.world.edit_message(me, req.id, req.message, req.entities)
    mine = [u for uid, u in produced if uid == me.id]
    call.server.fan_out(produced, exclude=call.conn)
    return call.server.updates_for(me.id, mine)


@handler(functions.messages.DeleteMessagesRequest)
def delete_messages(call: Call, req: functions.messages.DeleteMessagesRequest) -> object:
    me = call.me()
    produced = call.world.delete_messages(me, list(req.id), bool(req.revoke))
    call.server.fan_out(produced, exclude=call.conn)
    mine = next((u for uid, u in produced if uid == me.id), None)
    if mine is None:
        return types.messages.AffectedMessages(pts=me.pts, pts_count=0)
    return types.messages.AffectedMessages(pts=mine.pts, pts_count=mine.pts_count)


# -- basic groups ---------------------------------------------------------------------------------


@handler(functions.messages.CreateChatRequest)
def create_chat(call: Call, req: functions.messages.CreateChatRequest) -> object:
    me = call.me()
    members = [call.input_user(u) for u in req.users]
    group = call.world.create_group(me, req.title or "", members)
    copies = call.world.post_message(
        me, -group.id,
        action=types.MessageActionChatCreate(title=group.title, users=list(group.member_ids)),
    )
    call.server.fan_out(((c.user_id, c.update) for c in copies), exclude=call.conn)
    return types.messages.InvitedUsers(
        updates=call.server.updates_for(me.id, [copies[0].update]), missing_invitees=[]
    )


@handler(functions.messages.GetChatsRequest)
def get_chats(call: Call, req: functions.messages.GetChatsRequest) -> types.messages.Chats:
    me = call.me()
    return types.messages.Chats(
        chats=[call.world.chat_view(cid, me.id) for cid in req.id if cid in call.world.groups]
    )


@handler(functions.channels.GetChannelsRequest)
def get_channels(call: Call, req: functions.channels.GetChannelsRequest) -> object:
    """The sandbox has no channels: every one asked for is unknown (Telethon asks when given a
    channel's marked id, -100…, that is not in its entity cache)."""
    call.me()
    if req.id:
        raise RpcFailure(400, "CHANNEL_INVALID")
    return types.messages.Chats(chats=[])


@handler(functions.messages.GetFullChatRequest)
def get_full_chat(call: Call, req: functions.messages.GetFullChatRequest) -> object:
    me = call.me()
    group = call.world.groups.get(req.chat_id)
    if group is None:
        raise RpcFailure(400, "CHAT_ID_INVALID")
    participants = [
        types.ChatParticipantCreator(user_id=uid) if uid == group.creator_id
        else types.ChatParticipant(user_id=uid, inviter_id=group.creator_id, date=group.date)
        for uid in group.member_ids
    ]
    full = types.ChatFull(
        id=group.id,
        about="",
        participants=types.ChatParticipants(
            chat_id=group.id, participants=participants, version=group.version
        ),
        notify_settings=types.PeerNotifySettings(),
    )
    users, chats = call.world.entities(me.id, group.member_ids, [group.id])
    return types.messages.ChatFull(full_chat=full, chats=chats, users=users)
