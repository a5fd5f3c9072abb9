"""Start and stop every resource in order: database → services → Telegram → workers.

aiohttp's cleanup_ctx runs these contexts in order on start-up and in reverse on shutdown, so a
failure half-way through start-up still releases whatever was already opened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from sqlalchemy.exc import SQLAlchemyError

from twin import keys
from twin.config import Settings

if TYPE_CHECKING:
    from twin.app import Adapters

log = logging.getLogger("twin.lifecycle")

Context = Callable[[web.Application], AsyncIterator[None]]


def install(app: web.Application, settings: Settings, adapters: Adapters) -> None:
    app.cleanup_ctx.append(_database_context(settings, adapters))
    app.cleanup_ctx.append(_services_context(settings))
    app.cleanup_ctx.append(_telegram_context())


def _database_context(settings: Settings, adapters: Adapters) -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        if adapters.database is not None:
            app[keys.DATABASE] = adapters.database
            yield
            return
        from twin.db import migrate
        from twin.db.engine import database

        # The embedded default must "just run": bring the schema up to date on start. A server
        # that is down is not fatal: /health says so and the services retry until it is back.
        try:
            if not await migrate.is_up_to_date(settings.storage.url):
                log.info("upgrading the database schema to %s", migrate.head())
                await migrate.upgrade(settings.storage.url)
        except (OSError, SQLAlchemyError) as exc:
            log.error("database unreachable at start (%s); schema not checked", exc)
        async with database(settings) as db:
            app[keys.DATABASE] = db
            yield
        log.info("database closed")

    return context


def _services_context(settings: Settings) -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        from twin.services.accounts import TelegramAccounts
        from twin.services.events import EventLog
        from twin.services.intake import Intake
        from twin.services.outbox import Outbox
        from twin.voice.factory import build_stt, build_tts

        repo = getattr(app[keys.DATABASE], "repo", None)
        if repo is None:  # an injected health-only database (API tests): no services to run
            yield
            return
        events = EventLog(repo)
        try:
            events.last_id = await repo.last_event_id()
        except (OSError, SQLAlchemyError):
            log.warning("event log position unknown: the database is unreachable")
        intake = Intake(repo, events)
        app[keys.EVENTS] = events
        app[keys.INTAKE] = intake
        app[keys.ACCOUNTS] = TelegramAccounts(settings, repo, intake)
        app[keys.OUTBOX] = Outbox(repo, events)
        services = app[keys.SERVICES]
        services["stt"] = build_stt(settings.stt) if settings.stt.api_key or settings.stt.base_url else None
        services["tts"] = build_tts(settings.tts)
        yield
        for name in ("stt", "tts"):
            if services.get(name) is not None:
                await services[name].aclose()

    return context


def _telegram_context() -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        accounts = app.get(keys.ACCOUNTS)
        if accounts is None:
            yield
            return
        await accounts.start()
        yield
        # Disconnecting saves each session's update state: the next start catches up from it.
        await accounts.stop()
        log.info("telegram disconnected")

    return context
