"""Handlers for connection setup and login: help.*, auth.*, account.getPassword.

Why these rules: Telethon's login flow (MTPROTO-SANDBOX-NOTES.md §5) sends getUsers/getState
before login and expects 401 AUTH_KEY_UNREGISTERED, phones arrive without '+', a 2FA account
answers signIn with 401 SESSION_PASSWORD_NEEDED, and the password is checked with real SRP.
Login codes are also delivered as a message from 777000 to the account's other sessions,
like the real service does.
"""

from __future__ import annotations

import datetime as dt

from telethon.tl import functions, types

from . import srp
from .models import StatusUpdate
from .rpc import Call, handler
from .state import SERVICE_USER_ID, RpcFailure, normalize_phone

_CODE_LENGTH = 5


@handler(functions.help.GetConfigRequest, auth=False)
def get_config(call: Call, _req: functions.help.GetConfigRequest) -> types.Config:
    server = call.server
    now = server.clock.date()
    return types.Config(
        date=now,
        expires=now + dt.timedelta(hours=1),
        test_mode=False,
        this_dc=server.dc_id,
        dc_options=[types.DcOption(id=server.dc_id, ip_address=server.host, port=server.port)],
        dc_txt_domain_name="sandbox.invalid",
        chat_size_max=200,
        megagroup_size_max=200000,
        forwarded_count_max=100,
        online_update_period_ms=210000,
        offline_blur_timeout_ms=5000,
        offline_idle_timeout_ms=30000,
        online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000,
        notify_default_delay_ms=1500,
        push_chat_period_ms=60000,
        push_chat_limit=2,
        edit_time_limit=172800,
        revoke_time_limit=2147483647,
        revoke_pm_time_limit=2147483647,
        rating_e_decay=2419200,
        stickers_recent_limit=200,
        channels_read_media_period=604800,
        call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000,
        call_connect_timeout_ms=30000,
        call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=server.dc_id,
    )


@handler(functions.help.GetNearestDcRequest, auth=False)
def get_nearest_dc(call: Call, _req: object) -> types.NearestDc:
    return types.NearestDc(country="ZZ", this_dc=call.server.dc_id, nearest_dc=call.server.dc_id)


@handler(functions.help.GetAppConfigRequest, auth=False)
def get_app_config(_call: Call, _req: object) -> types.help.AppConfig:
    return types.help.AppConfig(hash=1, config=types.JsonObject(value=[]))


@handler(functions.auth.SendCodeRequest, auth=False)
def send_code(call: Call, req: functions.auth.SendCodeRequest) -> types.auth.SentCode:
    phone = normalize_phone(req.phone_number or "")
    world = call.world
    login = world.issue_code(phone)
    if call.server.on_code is not None:
        call.server.on_code(phone, login.code)
    uid = world.by_phone.get(phone)
    if uid is None:
        code_type = types.auth.SentCodeTypeSms(length=_CODE_LENGTH)
    else:
        code_type = types.auth.SentCodeTypeApp(length=_CODE_LENGTH)
        _deliver_code_message(call, uid, login.code)
    return types.auth.SentCode(type=code_type, phone_code_hash=login.phone_code_hash)


@handler(functions.auth.ResendCodeRequest, auth=False)
def resend_code(call: Call, req: functions.auth.ResendCodeRequest) -> types.auth.SentCode:
    """A fresh code for a pending login (Telethon asks for it on a second send_code_request
    for the same phone); an unknown, replaced or expired login is PHONE_CODE_EXPIRED."""
    phone = normalize_phone(req.phone_number or "")
    world = call.world
    pending = world.codes.get(phone)
    if (
        pending is None
        or pending.phone_code_hash != req.phone_code_hash
        or world.clock.now() > pending.expires_at
    ):
        raise RpcFailure(400, "PHONE_CODE_EXPIRED")
    login = world.issue_code(phone, phone_code_hash=pending.phone_code_hash)
    if call.server.on_code is not None:
        call.server.on_code(phone, login.code)
    uid = world.by_phone.get(phone)
    if uid is not None:
        _deliver_code_message(call, uid, login.code)
    code_type = types.auth.SentCodeTypeSms(length=_CODE_LENGTH)
    return types.auth.SentCode(type=code_type, phone_code_hash=login.phone_code_hash)


def _deliver_code_message(call: Call, uid: int, code: str) -> None:
    """Like Telegram: the code arrives from 777000 in the account's logged-in sessions."""
    world = call.world
    text = (
        f"Login code: {code}. Do not give this code to anyone, even if they say they are "
        "from Telegram!\n\nThis code can be used to log in to your Telegram account."
    )
    copies = world.post_message(world.accounts[SERVICE_USER_ID], uid, text=text)
    call.server.fan_out((c.user_id, c.update) for c in copies)


def _authorize(call: Call, uid: int) -> types.auth.Authorization:
    call.auth.user_id = uid
    call.auth.pending_2fa_user_id = None
    return types.auth.Authorization(user=call.world.user_view(uid, uid))


@handler(functions.auth.SignInRequest, auth=False)
def sign_in(call: Call, req: functions.auth.SignInRequest) -> object:
    world = call.world
    phone = normalize_phone(req.phone_number or "")
    login = world.check_code(phone, req.phone_code_hash, req.phone_code)
    uid = world.by_phone.get(phone)
    if uid is None:
        login.verified = True
        return types.auth.AuthorizationSignUpRequired()
    world.codes.pop(phone, None)
    account = world.accounts[uid]
    if account.password is not None:
        call.auth.pending_2fa_user_id = uid
        raise RpcFailure(401, "SESSION_PASSWORD_NEEDED")
    return _authorize(call, uid)


@handler(functions.auth.SignUpRequest, auth=False)
def sign_up(call: Call, req: functions.auth.SignUpRequest) -> types.auth.Authorization:
    world = call.world
    phone = normalize_phone(req.phone_number or "")
    login = world.codes.get(phone)
    if login is None or login.phone_code_hash != req.phone_code_hash or not login.verified:
        raise RpcFailure(400, "PHONE_CODE_EXPIRED")
    if not (req.first_name or "").strip():
        raise RpcFailure(400, "FIRSTNAME_INVALID")
    account = world.create_account(phone, req.first_name.strip(), (req.last_name or "").strip())
    world.codes.pop(phone, None)
    return _authorize(call, account.id)


@handler(functions.account.GetPasswordRequest, auth=False)
def get_password(call: Call, _req: object) -> types.account.Password:
    uid = call.auth.pending_2fa_user_id or call.auth.user_id
    if uid is None:
        raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
    verifier = call.world.accounts[uid].password
    if verifier is None:
        return srp.no_password()
    return verifier.account_password(verifier.new_challenge())


@handler(functions.auth.CheckPasswordRequest, auth=False)
def check_password(
    call: Call, req: functions.auth.CheckPasswordRequest
) -> types.auth.Authorization:
    uid = call.auth.pending_2fa_user_id
    if uid is None:
        raise RpcFailure(400, "PASSWORD_HASH_INVALID")
    verifier = call.world.accounts[uid].password
    check = req.password
    if verifier is None or not isinstance(check, types.InputCheckPasswordSRP):
        raise RpcFailure(400, "PASSWORD_HASH_INVALID")
    try:
        ok = verifier.check(check.srp_id, check.A, check.M1)
    except KeyError:
        raise RpcFailure(400, "SRP_ID_INVALID") from None
    if not ok:
        raise RpcFailure(400, "PASSWORD_HASH_INVALID")
    return _authorize(call, uid)


@handler(functions.auth.ImportBotAuthorizationRequest, auth=False)
def import_bot_authorization(
    call: Call, req: functions.auth.ImportBotAuthorizationRequest
) -> object:
    for account in call.world.accounts.values():
        if account.bot and account.bot_token == req.bot_auth_token:
            return _authorize(call, account.id)
    raise RpcFailure(400, "ACCESS_TOKEN_INVALID")


@handler(functions.auth.LogOutRequest)
def log_out(call: Call, _req: object) -> types.auth.LoggedOut:
    call.auth.user_id = None
    call.auth.pending_2fa_user_id = None
    return types.auth.LoggedOut()


@handler(functions.account.UpdateStatusRequest)
def update_status(call: Call, req: functions.account.UpdateStatusRequest) -> bool:
    """A session sets its user's presence. Recorded per authorization
    (`SandboxServer.status_updates`: which session made a user look online), and pushed as
    updateUserStatus to the user's other sessions (their other devices) and to everyone with a
    dialog with them."""
    me = call.user_only()
    me.online = not req.offline
    call.server.status_updates.append(
        StatusUpdate(user_id=me.id, auth_key_id=call.auth.auth_key.key_id, offline=req.offline)
    )
    date = call.world.clock.date()
    status = (
        types.UserStatusOffline(was_online=date)
        if req.offline
        else types.UserStatusOnline(expires=date + dt.timedelta(minutes=5))
    )
    update = types.UpdateShort(types.UpdateUserStatus(user_id=me.id, status=status), date)
    call.server.push(me.id, update, exclude=call.conn)
    for other in call.world.accounts.values():
        if other.id != me.id and me.id in other.dialogs:
            call.server.push(other.id, update)
    call.server.notify_change()
    return True


@handler(functions.account.UpdateProfileRequest)
def update_profile(call: Call, req: functions.account.UpdateProfileRequest) -> types.User:
    me = call.me()
    if req.first_name is not None:
        if not req.first_name.strip():
            raise RpcFailure(400, "FIRSTNAME_INVALID")
        me.first_name = req.first_name
    if req.last_name is not None:
        me.last_name = req.last_name
    return call.world.user_view(me.id, me.id)
