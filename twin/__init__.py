"""twin: a self-hosted Telegram digital twin."""

__version__ = "0.1.0"
