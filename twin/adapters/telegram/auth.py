"""Logging in and out: the code, the two-step verification password, the logout.

A mixin of TelegramAccount (account.py) built on AccountBase (base.py), as Telethon's
`client/auth.py` is of its client."""

from __future__ import annotations

import logging
from typing import Any

from telethon import errors, functions, types

from twin.adapters.telegram import mapping
from twin.adapters.telegram.base import AccountBase, PendingLogin
from twin.adapters.telegram.records import CodeSent, LoginResult, TelegramUser
from twin.adapters.telegram.refusals import rpc_errors
from twin.errors import Conflict, InvalidInput, TwinError, Unauthorized
from twin.logs import redactor

log = logging.getLogger("twin.telegram")

_CODE_TYPES = {
    types.auth.SentCodeTypeApp: "app",
    types.auth.SentCodeTypeSms: "sms",
    types.auth.SentCodeTypeCall: "call",
    types.auth.SentCodeTypeFlashCall: "flash_call",
    types.auth.SentCodeTypeMissedCall: "missed_call",
    types.auth.SentCodeTypeEmailCode: "email",
    types.auth.SentCodeTypeFragmentSms: "fragment_sms",
}

_PASSWORD_NEEDED = object()  # what _sign_in returns when a 2FA password must follow


class AuthMethods(AccountBase):
    async def request_code(self, phone: str) -> CodeSent:
        digits = mapping.normalize_phone(phone)
        if not 7 <= len(digits) <= 15:
            raise InvalidInput("phone", "a phone number has 7 to 15 digits, in international form")
        async with self._lock:
            with rpc_errors(self.name):
                sent = await self.client.send_code_request("+" + digits)
            # A second request for the same phone replaces the first pending login.
            self._pending = PendingLogin(phone=digits, phone_code_hash=sent.phone_code_hash)
            return CodeSent(
                phone_code_hash=sent.phone_code_hash,
                type=_CODE_TYPES.get(type(sent.type), "unknown"),
                timeout=sent.timeout,
            )

    async def verify_code(
        self, phone: str, code: str | None, password: str | None = None
    ) -> LoginResult:
        """Complete a login: the code, then (for 2FA accounts) the password, in one or two calls."""
        redactor.add(code, password)
        digits = mapping.normalize_phone(phone)
        async with self._lock:
            pending = self._pending
            if pending is None or pending.phone != digits:
                raise Conflict("no login is pending for this phone; request a code first")
            with rpc_errors(self.name, passthrough=(TwinError,)):
                user = await self._sign_in(pending, code, password)
                if user is _PASSWORD_NEEDED:
                    return LoginResult("password_required", hint=await self._password_hint())
            await self._authorized(user)
            return LoginResult("authorized", user=self._me)

    async def login_bot(self, token: str) -> TelegramUser:
        """Log a bot in by its token (`auth.importBotAuthorization`): the token is checked by
        Telegram (ACCESS_TOKEN_INVALID: InvalidInput) and never logged."""
        redactor.add(token)
        async with self._lock:
            with rpc_errors(self.name, passthrough=(TwinError,)):
                try:
                    user = await self.client.sign_in(bot_token=token)
                except (errors.AccessTokenInvalidError, errors.AccessTokenExpiredError):
                    raise InvalidInput("token", "Telegram refused this bot token") from None
            await self._authorized(user)
            assert self._me is not None
            return self._me

    async def still_authorized(self) -> bool:
        """Ask Telegram whether the session still works (one `updates.getState`): False when
        its authorization is gone (a bot's token revoked, the bot deleted, the session
        terminated elsewhere); True when it works, or when Telegram cannot say now."""
        if self._me is None or self._client is None:
            return False
        try:
            await self._client(functions.updates.GetStateRequest())
        except (
            errors.AuthKeyUnregisteredError,
            errors.AuthKeyInvalidError,
            errors.SessionRevokedError,
            errors.SessionExpiredError,
            errors.UserDeactivatedError,
            errors.UnauthorizedError,
        ):
            return False
        except Exception:  # an outage is not a revocation
            return True
        return True

    async def submit_password(self, password: str) -> LoginResult:
        """The second step of a 2FA login (POST /auth/password)."""
        pending = self._pending
        if pending is None or not pending.awaiting_password:
            raise Conflict("no login is waiting for a password")
        return await self.verify_code(pending.phone, None, password)

    async def _sign_in(self, pending: PendingLogin, code: str | None, password: str | None) -> Any:
        """The signed-in user; `_PASSWORD_NEEDED` when 2FA is on and no password came yet."""
        if pending.awaiting_password:
            return await self._sign_in_password(password)
        if not code:
            raise InvalidInput("code", "the login code is required")
        try:
            return await self.client.sign_in(
                phone="+" + pending.phone, code=code, phone_code_hash=pending.phone_code_hash
            )
        except errors.SessionPasswordNeededError:
            pending.awaiting_password = True
            if not password:
                return _PASSWORD_NEEDED
            return await self._sign_in_password(password)

    async def _sign_in_password(self, password: str | None) -> Any:
        if not password:
            raise InvalidInput("password", "two-step verification is on: a password is required")
        return await self.client.sign_in(password=password)

    async def _password_hint(self) -> str | None:
        try:
            info = await self.client(functions.account.GetPasswordRequest())
        except errors.RPCError:
            return None
        return info.hint or None

    async def _authorized(self, user: Any) -> None:
        self._me = TelegramUser(
            id=user.id,
            name=mapping.display_name(user),
            username=user.username,
            phone=user.phone,
            bot=bool(getattr(user, "bot", False)),
        )
        self._pending = None
        if self._handlers.authorized is not None:
            await self._handlers.authorized(self.name, self._me)
        # Persist at once: a crash before Telethon's periodic save must not lose the login.
        if self._session is not None:
            await self._session.flush()
        log.info("account %s authorized as user %s", self.name, self._me.id)

    async def logout(self) -> None:
        """Log out of Telegram (the authorization ends there), disconnect and forget the
        session. The next login builds a new client, with its own handlers."""
        async with self._lock:
            if self._me is None:
                raise Unauthorized("the Telegram account is not logged in")
            with rpc_errors(self.name):
                # Not client.log_out(): it would hand our session's async delete() to
                # Telethon's experimental async-session path, and we erase it ourselves.
                await self.client(functions.auth.LogOutRequest())
            self.link.closing()  # logged out: what follows is no outage
            client, session = self._client, self._session
            self._me = None
            self._pending = None
            self._client = None
            self._session = None
            if client is not None:
                await client.disconnect()
            if session is not None:
                await session.erase()
            log.info("account %s logged out", self.name)
