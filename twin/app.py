"""The only application factory: configuration in, a ready-to-run aiohttp app out."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from aiohttp import web

from twin import keys, lifecycle, ports
from twin.api import setup_api
from twin.config import Settings


@dataclass(frozen=True)
class Adapters:
    """Optional replacements for I/O dependencies (service-level tests inject fakes here);
    each must implement its port in twin/ports.py, which `create_app` checks."""

    database: Any | None = None  # a twin.db.engine.Database, or a health-only stand-in
    brain: ports.Thinker | None = None
    stt: ports.SpeechToText | None = None
    tts: ports.TextToSpeech | None = None
    clock: ports.Clock | None = None


PORTS: dict[str, type] = {
    "brain": ports.Thinker,
    "stt": ports.SpeechToText,
    "tts": ports.TextToSpeech,
    "clock": ports.Clock,
}


def check_adapters(adapters: Adapters) -> None:
    """Fail now, not at the first message, when an injected adapter lacks part of its port."""
    problems = [
        f"adapters.{field.name} ({type(value).__name__}) lacks {', '.join(lacking)} of "
        f"twin.ports.{PORTS[field.name].__name__}"
        for field in fields(adapters)
        if field.name in PORTS
        and (value := getattr(adapters, field.name)) is not None
        and (lacking := ports.missing(value, PORTS[field.name]))
    ]
    if problems:
        raise TypeError("; ".join(problems))


def create_app(settings: Settings, *, adapters: Adapters | None = None) -> web.Application:
    adapters = adapters or Adapters()
    check_adapters(adapters)
    app = web.Application(client_max_size=settings.api.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.SERVICES] = {}
    lifecycle.install(app, settings, adapters)
    setup_api(app, settings)
    return app
