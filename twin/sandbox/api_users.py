"""Handlers for users and contacts: users.getUsers/getFullUser, contacts.*.

Why: the daemon decides whom to answer from what User objects say (`contact`,
`mutual_contact`, `bot`), so these flags are computed per viewer exactly like Telegram does:
`contact` = the viewer saved this user, `mutual_contact` = both saved each other.
"""

from __future__ import annotations

from telethon.tl import functions, types

from .rpc import Call, handler
from .state import RpcFailure, normalize_phone


@handler(functions.users.GetUsersRequest)
def get_users(call: Call, req: functions.users.GetUsersRequest) -> list[types.User]:
    me = call.me()
    users = []
    for input_user in req.id:
        try:
            account = call.input_user(input_user)
        except RpcFailure:
            continue  # Telegram silently omits unknown users
        users.append(call.world.user_view(account.id, me.id))
    return users


@handler(functions.users.GetFullUserRequest)
def get_full_user(call: Call, req: functions.users.GetFullUserRequest) -> types.users.UserFull:
    me = call.me()
    account = call.input_user(req.id)
    common = sum(
        1 for g in call.world.groups.values()
        if me.id in g.member_ids and account.id in g.member_ids
    )
    full = types.UserFull(
        id=account.id,
        settings=types.PeerSettings(),
        notify_settings=types.PeerNotifySettings(),
        common_chats_count=common,
        about=None,
    )
    return types.users.UserFull(
        full_user=full, chats=[], users=[call.world.user_view(account.id, me.id)]
    )


@handler(functions.contacts.ResolveUsernameRequest)
def resolve_username(call: Call, req: functions.contacts.ResolveUsernameRequest) -> object:
    me = call.me()
    uid = call.world.by_username.get((req.username or "").lstrip("@").lower())
    if uid is None:
        raise RpcFailure(400, "USERNAME_NOT_OCCUPIED")
    return types.contacts.ResolvedPeer(
        peer=types.PeerUser(uid), chats=[], users=[call.world.user_view(uid, me.id)]
    )


@handler(functions.contacts.ResolvePhoneRequest)
def resolve_phone(call: Call, req: functions.contacts.ResolvePhoneRequest) -> object:
    me = call.me()
    uid = call.world.by_phone.get(normalize_phone(req.phone))
    if uid is None:
        raise RpcFailure(400, "PHONE_NOT_OCCUPIED")
    return types.contacts.ResolvedPeer(
        peer=types.PeerUser(uid), chats=[], users=[call.world.user_view(uid, me.id)]
    )


@handler(functions.contacts.GetContactsRequest)
def get_contacts(call: Call, _req: object) -> types.contacts.Contacts:
    me = call.me()
    world = call.world
    ids = list(me.contacts)
    return types.contacts.Contacts(
        contacts=[
            types.Contact(user_id=u, mutual=me.id in world.accounts[u].contacts) for u in ids
        ],
        saved_count=len(ids),
        users=[world.user_view(u, me.id) for u in ids],
    )


@handler(functions.contacts.AddContactRequest)
def add_contact(call: Call, req: functions.contacts.AddContactRequest) -> types.Updates:
    me = call.me()
    account = call.input_user(req.id)
    if account.id == me.id:
        raise RpcFailure(400, "CONTACT_ID_INVALID")
    call.world.add_contact(me, account, req.first_name or "", req.last_name or "")
    return call.updates_for(me.id, [])


@handler(functions.contacts.ImportContactsRequest)
def import_contacts(call: Call, req: functions.contacts.ImportContactsRequest) -> object:
    me = call.me()
    world = call.world
    imported, users = [], []
    for contact in req.contacts:
        try:
            uid = world.by_phone.get(normalize_phone(contact.phone))
        except RpcFailure:
            uid = None
        if uid is None or uid == me.id:
            continue
        world.add_contact(me, world.accounts[uid], contact.first_name, contact.last_name)
        imported.append(types.ImportedContact(user_id=uid, client_id=contact.client_id))
        users.append(world.user_view(uid, me.id))
    return types.contacts.ImportedContacts(
        imported=imported, popular_invites=[], retry_contacts=[], users=users
    )


@handler(functions.contacts.DeleteContactsRequest)
def delete_contacts(call: Call, req: functions.contacts.DeleteContactsRequest) -> types.Updates:
    me = call.me()
    for input_user in req.id:
        me.contacts.pop(call.input_user(input_user).id, None)
    return call.updates_for(me.id, [])
