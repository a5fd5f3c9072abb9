"""Typed keys for state stored on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from twin.config import Settings

if TYPE_CHECKING:
    from twin.channels.conversation_api import ConversationApi
    from twin.channels.external import ExternalChannel
    from twin.channels.http_chat import HttpChat
    from twin.channels.talkme import TalkMe
    from twin.clock import Clock
    from twin.db.engine import Database
    from twin.services.account_admin import AccountAdmin
    from twin.services.accounts import TelegramAccounts
    from twin.services.app_sessions import AppSessions
    from twin.services.bots import BotAdmin
    from twin.services.chats import ChatPauses
    from twin.services.directory import AccountDirectory
    from twin.services.drafts import Drafts
    from twin.services.events import EventLog
    from twin.services.health import Health
    from twin.services.intake import Intake
    from twin.services.keys import ApiKeys
    from twin.services.knowledge import KnowledgeBase
    from twin.services.outbox import Outbox
    from twin.services.safety import Safety
    from twin.services.settings import BehaviourSettings
    from twin.services.twins import Twins

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")  # the one clock (tests inject a ManualClock)
DATABASE: web.AppKey[Database] = web.AppKey("database")
EVENTS: web.AppKey[EventLog] = web.AppKey("events")
INTAKE: web.AppKey[Intake] = web.AppKey("intake")
DIRECTORY: web.AppKey[AccountDirectory] = web.AppKey("directory")  # account names <-> ids
ACCOUNTS: web.AppKey[TelegramAccounts] = web.AppKey("accounts")
SAFETY: web.AppKey[Safety] = web.AppKey("safety")
ACCOUNT_ADMIN: web.AppKey[AccountAdmin] = web.AppKey("account_admin")  # list, log out, delete
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
CHATS: web.AppKey[ChatPauses] = web.AppKey("chats")  # pause / resume a chat
DRAFTS: web.AppKey[Drafts] = web.AppKey("drafts")  # the owner's drafts (copilot mode)
BEHAVIOUR: web.AppKey[BehaviourSettings] = web.AppKey("behaviour")  # account / chat overrides
HTTP_CHAT: web.AppKey[HttpChat] = web.AppKey("http_chat")  # POST /api/chat
TALKME: web.AppKey[TalkMe] = web.AppKey("talkme")  # POST /webhook/talkme
EXTERNAL: web.AppKey[ExternalChannel] = web.AppKey("external")  # /api/v1/external/messages
CONVERSATION_API: web.AppKey[ConversationApi] = web.AppKey("conversation_api")  # /api/v1/conv…
BOTS: web.AppKey[BotAdmin] = web.AppKey("bots")  # Telegram bots (/bots)
TWINS: web.AppKey[Twins] = web.AppKey("twins")  # the personas accounts answer as
KNOWLEDGE: web.AppKey[KnowledgeBase] = web.AppKey("knowledge")  # each twin's documents
API_KEYS: web.AppKey[ApiKeys] = web.AppKey("api_keys")  # stored API keys and scopes
APP_SESSIONS: web.AppKey[AppSessions] = web.AppKey("app_sessions")  # the admin app's sign-ins
HEALTH: web.AppKey[Health] = web.AppKey("health")  # dependencies' last success / failure
# Later layers (pipeline, brain, channels) register their services here by name.
SERVICES: web.AppKey[dict[str, Any]] = web.AppKey("services")
