"""The only application factory: configuration in, a ready-to-run aiohttp app out."""

from __future__ import annotations

from aiohttp import web

from twin import keys, lifecycle
from twin.api import setup_api
from twin.config import Settings
from twin.ports import Adapters, check_adapters

__all__ = ["Adapters", "create_app"]


def create_app(settings: Settings, *, adapters: Adapters | None = None) -> web.Application:
    adapters = adapters or Adapters()
    check_adapters(adapters)
    app = web.Application(client_max_size=settings.api.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.SERVICES] = {}
    lifecycle.install(app, settings, adapters)
    setup_api(app, settings)
    return app
