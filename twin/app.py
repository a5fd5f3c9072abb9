"""The only application factory: configuration in, a ready-to-run aiohttp app out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from twin import keys, lifecycle
from twin.api import setup_api
from twin.config import Settings


@dataclass(frozen=True)
class Adapters:
    """Optional replacements for I/O dependencies (service-level tests inject fakes here)."""

    database: Any | None = None
    brain: Any | None = None
    stt: Any | None = None
    tts: Any | None = None
    clock: Any | None = None


def create_app(settings: Settings, *, adapters: Adapters | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.api.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.SERVICES] = {}
    lifecycle.install(app, settings, adapters or Adapters())
    setup_api(app, settings)
    return app
