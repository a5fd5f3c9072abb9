"""The `[channels.<name>]` sections: the channels other than Telegram accounts.

Each channel instance names the twin that answers there and its own policy. Telegram accounts
are configured by logging in (twin login) and are not listed here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from twin.config_behaviour import Section

_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _instance_name(value: str) -> str:
    if not _INSTANCE_NAME.match(value):
        raise ValueError("1-64 letters, digits, '_', '.', '-', starting with a letter or digit")
    return value


class ChatChannelSettings(Section):
    """`[channels.chat]`: the HTTP chat API (`POST /api/chat`) for n8n, scripts, web widgets."""

    enabled: bool = True
    # The channel instance's name: its conversations are listed, counted and filtered under it
    # (GET /messages?account=…, GET /stats?account=…); it must not be a Telegram account's name.
    instance: str = "chat"
    twin: str = Field("default", description="the twin that answers on this channel")
    # Answer only within the twin's [schedule] hours; outside them, its away message.
    working_hours: bool = False
    # The Telegram account whose Saved Messages hear of escalations ("": the logged-in
    # Telegram accounts answering as the channel's twin, the first that can send).
    notify: str = ""

    _instance = field_validator("instance")(lambda value: _instance_name(value))


class TalkMeChannelSettings(Section):
    """`[channels.talkme]`: the TalkMe voice-call webhook (`POST /webhook/talkme`)."""

    enabled: bool = False
    instance: str = "talkme"
    twin: str = Field("default", description="the twin that answers on this channel")
    # How a webhook proves it comes from TalkMe: the shared secret in `header`, or an
    # HMAC-SHA256 of "<timestamp>.<body>" under the secret in `signature_header` (hex) with the
    # Unix time in `timestamp_header`, at most `replay_window` seconds off; "none" only when
    # set explicitly. The API's admin tokens are accepted too.
    auth: Literal["header", "hmac", "none"] = "header"
    secret: SecretStr | None = None
    header: str = "X-TalkMe-Secret"
    signature_header: str = "X-TalkMe-Signature"
    timestamp_header: str = "X-TalkMe-Timestamp"
    replay_window: float = Field(300.0, gt=0)
    # Voice platforms hang up on slow webhooks: past this many seconds the caller hears
    # `holding_phrase`, and the answer, once generated, is said at the next turn.
    answer_deadline: float = Field(8.0, gt=0)
    holding_phrase: str = Field("One moment, please, let me check that.", min_length=1)
    # Answer only within the twin's [schedule] hours; outside them, its away message (and the
    # call ends).
    working_hours: bool = False
    notify: str = ""  # as [channels.chat] notify

    _instance = field_validator("instance")(lambda value: _instance_name(value))

    @model_validator(mode="after")
    def _fail_closed(self) -> TalkMeChannelSettings:
        if self.enabled and self.auth != "none" and self.secret is None:
            raise ValueError(
                f"auth = \"{self.auth}\" needs TWIN_CHANNELS__TALKME__SECRET (or auth = "
                '"none", explicitly)'
            )
        return self


class ExternalChannelSettings(Section):
    """`[channels.external]`: an external messenger exchanging webhooks with the twin
    (`POST /api/v1/external/messages` in; the twin's messages POSTed to `webhook_url`)."""

    enabled: bool = False
    instance: str = "external"
    twin: str = Field("default", description="the twin that answers on this channel")
    webhook_url: str = ""
    # Signs every webhook: header `X-Twin-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
    # "<t>.<body>">`; from the environment only (TWIN_CHANNELS__EXTERNAL__WEBHOOK_SECRET).
    webhook_secret: SecretStr | None = None
    company_id: str = ""  # sent as `company_id` in every webhook
    # The admin page's address as the receiver reaches it (panel_url / share_url); "" sends
    # no links.
    panel_base_url: str = ""
    share_ttl: float = Field(7 * 24 * 3600.0, gt=0)  # seconds a share_url stays valid
    timeout: float = Field(10.0, gt=0)  # one delivery attempt
    max_age: float = Field(24 * 3600.0, gt=0)  # retried until this old, then `dead`
    retry_base: float = Field(1.0, gt=0)  # seconds: the first retry's wait (then doubling)
    working_hours: bool = False
    notify: str = ""  # as [channels.chat] notify

    _instance = field_validator("instance")(lambda value: _instance_name(value))

    @model_validator(mode="after")
    def _complete(self) -> ExternalChannelSettings:
        if self.enabled and not self.webhook_url:
            raise ValueError("enabled needs webhook_url (where the twin's messages are POSTed)")
        if self.enabled and self.webhook_secret is None:
            raise ValueError(
                "enabled needs TWIN_CHANNELS__EXTERNAL__WEBHOOK_SECRET (webhooks are signed)"
            )
        return self


class ConversationChannelSettings(Section):
    """`[channels.conversation]`: the conversation API for business integrations
    (`/api/v1/conversation/*`): sessions per user, the brain's judgement with every answer."""

    enabled: bool = True
    instance: str = "api"
    twin: str = Field("default", description="the twin that answers on this channel")
    working_hours: bool = False
    notify: str = ""  # as [channels.chat] notify
    # The integration vouches that a `platform = telegram` user's `user_id` is their Telegram
    # user id: contact memory then joins them with the Telegram chats of the same twin. Off by
    # default: any key with the conversation scope could otherwise claim a Telegram identity.
    telegram_user_ids: bool = False

    _instance = field_validator("instance")(lambda value: _instance_name(value))


class ChannelsSettings(Section):
    chat: ChatChannelSettings = Field(default_factory=ChatChannelSettings)
    talkme: TalkMeChannelSettings = Field(default_factory=TalkMeChannelSettings)
    external: ExternalChannelSettings = Field(default_factory=ExternalChannelSettings)
    conversation: ConversationChannelSettings = Field(default_factory=ConversationChannelSettings)
