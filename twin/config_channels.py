"""The `[channels.<name>]` sections: the channels other than Telegram accounts.

Each channel instance names the twin that answers there and its own policy. Telegram accounts
are configured by logging in (twin login) and are not listed here.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from twin.config_behaviour import Section

_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ChatChannelSettings(Section):
    """`[channels.chat]`: the HTTP chat API (`POST /api/chat`) for n8n, scripts, web widgets."""

    enabled: bool = True
    # The channel instance's name: its conversations are listed, counted and filtered under it
    # (GET /messages?account=…, GET /stats?account=…); it must not be a Telegram account's name.
    instance: str = "chat"
    twin: str = Field("default", description="the twin that answers on this channel")
    max_message_chars: int = Field(4000, ge=1, le=100_000)

    @field_validator("instance")
    @classmethod
    def _instance_name(cls, value: str) -> str:
        if not _INSTANCE_NAME.match(value):
            raise ValueError("1-64 letters, digits, '_', '.', '-', starting with a letter or digit")
        return value


class ChannelsSettings(Section):
    chat: ChatChannelSettings = Field(default_factory=ChatChannelSettings)
