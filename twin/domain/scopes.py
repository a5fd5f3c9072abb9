"""What an API key may be allowed to call: its scopes (`admin` may call everything)."""

from __future__ import annotations

SCOPES = ("admin", "chat", "webhook:talkme", "external", "analytics", "conversation", "messaging")
