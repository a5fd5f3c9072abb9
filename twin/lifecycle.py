"""Start and stop every resource in order: database → services → Telegram → workers.

aiohttp's cleanup_ctx runs these contexts in order on start-up and in reverse on shutdown, so a
failure half-way through start-up still releases whatever was already opened.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from twin import keys
from twin.config import Settings
from twin.domain.backoff import Backoff
from twin.errors import ConfigError, StartupError, StorageUnavailable

if TYPE_CHECKING:
    from twin.ports import Adapters

log = logging.getLogger("twin.lifecycle")

Context = Callable[[web.Application], AsyncIterator[None]]


def install(app: web.Application, settings: Settings, adapters: Adapters) -> None:
    from twin.clock import SystemClock

    # The one clock: the services, the repository's stamps and the views all read it.
    app[keys.CLOCK] = adapters.clock or SystemClock()
    app.cleanup_ctx.append(_database_context(settings, adapters))
    app.cleanup_ctx.append(_services_context(settings, adapters))
    app.cleanup_ctx.append(_telegram_context())
    app.cleanup_ctx.append(_worker_context(settings))


def _database_context(settings: Settings, adapters: Adapters) -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        if adapters.database is not None:
            app[keys.DATABASE] = adapters.database
            yield
            return
        from twin.db.engine import database

        await _schema_up_to_date(settings)
        async with database(settings, clock=app[keys.CLOCK]) as db:
            app[keys.DATABASE] = db
            yield
        log.info("database closed")

    return context


async def _schema_up_to_date(settings: Settings) -> None:
    """Bring the schema up to date before anything uses the database (the embedded default
    must "just run"). A database that is not reachable yet (PostgreSQL starting after twin on
    boot) is waited for with backoff: code running on an older schema would fail every write
    as a bug. One that refuses twin for good (bad credentials, no such database) stops the
    start with one line (exit 2)."""
    from twin.db import migrate
    from twin.db.engine import is_outage

    backoff, delay, waited = Backoff(base=0.5, cap=15.0), None, False
    rng = random.Random()
    while True:
        try:
            # (read without Alembic: it is imported only to upgrade)
            before = await migrate.stored_revision(settings.storage.url)
            head = migrate.newest_revision() or migrate.head()
            if before != head:
                await migrate.upgrade(settings.storage.url)
                log.info(
                    "database schema upgraded to %s (%s)",
                    head,
                    f"was {before}" if before else "a new database",
                )
            if waited:
                log.info("the database is reachable: starting")
            return
        except ConfigError:
            raise
        except Exception as exc:  # the driver's own errors too (asyncpg refuses at connect)
            if not is_outage(exc):
                raise StartupError(f"cannot use the database: {type(exc).__name__}: {exc}") from exc
            delay = backoff.next_delay(delay, rng)
            if not waited:
                log.warning(
                    "the database is unreachable (%s: %s); waiting for it before starting",
                    type(exc).__name__,
                    exc,
                )
            waited = True
            await asyncio.sleep(delay)


def _speech_to_text(settings: Settings) -> Any:
    from twin.voice.factory import build_stt

    if settings.stt.provider == "none":
        return None
    if not (settings.stt.api_key or settings.stt.base_url):
        log.warning("voice notes will not be transcribed: set TWIN_STT__API_KEY or stt.base_url")
        return None
    return build_stt(settings.stt)


def _embedder(settings: Settings) -> Any:
    """The embeddings provider of semantic retrieval, or None (lexical retrieval alone)."""
    from twin.brain.factory import build_embedder

    try:
        return build_embedder(settings.knowledge.embeddings, settings.llm)
    except ConfigError as exc:
        log.warning("knowledge: lexical retrieval only: %s", "; ".join(exc.problems))
        return None


def _brain(settings: Settings, tools: Any) -> Any:
    """The brain, or None when [llm] is not usable yet: the daemon still runs (login, API),
    and incoming messages are recorded but not answered until it is configured."""
    from twin.brain.factory import build_brain

    try:
        return build_brain(
            settings.llm, tools=tools, knowledge_share=settings.knowledge.prompt_share
        )
    except ConfigError as exc:
        log.warning("replies are off until the LLM is configured: %s", "; ".join(exc.problems))
        return None


def _worker_context(settings: Settings) -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        worker = app[keys.SERVICES].get("worker")
        if worker is None:
            yield
            return
        clock = app[keys.SERVICES]["clock"]
        since = clock.now() - timedelta(seconds=settings.telegram.max_catch_up_age)
        try:  # jobs these create wait for the worker, which starts next
            await app[keys.SERVICES]["pipeline"].plan_stored(since)
        except StorageUnavailable:
            log.warning("stored messages not checked for a decision: the database is down")
        recovery = app[keys.SERVICES]["recovery"]
        await worker.start()
        chores = app[keys.SERVICES].get("chores")
        if chores is not None:
            chores.start()  # a dead process's jobs are run again without waiting 15 min
        await recovery.start()  # probes while replies an outage made fail wait
        memory = app[keys.SERVICES]["memory"]
        memory.start()  # quiet conversations: what their contacts said is remembered
        drafts = app[keys.SERVICES]["drafts"]
        drafts.start()  # drafts nobody decided expire
        retention = app[keys.SERVICES]["retention"]
        retention.start()  # texts older than [storage] retention_days go
        yield
        await retention.stop()
        await drafts.stop()
        await memory.stop()
        await recovery.stop()
        if chores is not None:
            await chores.stop()
        await worker.stop()
        await drafts.drain(timeout=10)  # after the worker: its last jobs' notes go out too
        await app[keys.SERVICES]["autonomy"].drain()

    return context


def _services_context(settings: Settings, adapters: Adapters) -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        from twin.api.auth import Keyring
        from twin.api.metrics import METRICS
        from twin.channels.conversation_api import ConversationApi
        from twin.channels.conversations import ChannelParts
        from twin.channels.external import CHANNEL as EXTERNAL
        from twin.channels.external import ExternalChannel
        from twin.channels.http_chat import HttpChat
        from twin.channels.notify import OwnerNotifier
        from twin.channels.talkme import TalkMe
        from twin.channels.webhooks import WebhookSender
        from twin.jobs.worker import ReplyWorker
        from twin.services.account_admin import AccountAdmin
        from twin.services.accounts import TelegramAccounts
        from twin.services.activity import ActivityLog
        from twin.services.app_sessions import AppSessions
        from twin.services.autonomy import Autonomy
        from twin.services.bots import BotAdmin
        from twin.services.chats import ChatPauses
        from twin.services.commands import OwnerCommands
        from twin.services.directory import AccountDirectory
        from twin.services.drafts import Drafts
        from twin.services.events import EventLog
        from twin.services.health import Health
        from twin.services.intake import Intake
        from twin.services.keys import ApiKeys
        from twin.services.knowledge import KnowledgeBase
        from twin.services.memory import ContactMemory
        from twin.services.monitored import monitored
        from twin.services.outbox import Outbox
        from twin.services.recovery import OutageRecovery, RecoveryMetrics
        from twin.services.replies import ReplyPipeline
        from twin.services.retention import Retention
        from twin.services.safety import Safety
        from twin.services.safety_metrics import SafetyMetrics
        from twin.services.settings import BehaviourSettings
        from twin.services.tools import HttpTools
        from twin.services.twins import Twins
        from twin.voice.factory import build_tts

        repo = getattr(app[keys.DATABASE], "repo", None)
        if repo is None:  # an injected health-only database (API tests): no services to run
            yield
            return
        events = EventLog(repo)
        try:
            events.last_id = await repo.last_event_id()
        except (OSError, SQLAlchemyError, StorageUnavailable):
            log.warning("event log position unknown: the database is unreachable")
        clock = app[keys.CLOCK]
        directory = AccountDirectory(repo)
        ActivityLog(events, directory.known_name)  # one log line per event (pipeline step)
        intake = Intake(
            repo, events, directory, clock=clock, max_held=settings.storage.max_held_updates
        )
        app[keys.EVENTS] = events
        app[keys.INTAKE] = intake
        app[keys.DIRECTORY] = directory
        safety = Safety(settings, repo, directory, clock, events=events)
        await safety.start()  # the database out: loaded in the background when it is back
        app[keys.SAFETY] = safety
        if METRICS in app:
            safety.metrics = SafetyMetrics(app[METRICS].registry, safety)
        accounts = TelegramAccounts(settings, repo, directory, intake, clock=clock, safety=safety)
        app[keys.ACCOUNTS] = accounts
        app[keys.ACCOUNT_ADMIN] = AccountAdmin(repo, directory, events, accounts)
        app[keys.OUTBOX] = Outbox(repo, events, safety)
        app[keys.API_KEYS] = ApiKeys(repo, events, clock)
        app[keys.APP_SESSIONS] = AppSessions(  # the admin app's browser sessions
            repo,
            clock,
            idle_minutes=settings.api.session_idle_minutes,
            max_days=settings.api.session_max_days,
            tokens=frozenset(Keyring(settings.api.tokens).names),
        )
        twins = app[keys.TWINS] = Twins(settings, repo, events, directory)
        try:
            await twins.seed()  # the `default` twin: config.toml's [twin]
        except (OSError, SQLAlchemyError, StorageUnavailable):
            log.warning("the default twin could not be checked: the database is unreachable")
        services = app[keys.SERVICES]
        services["clock"] = clock
        health = app[keys.HEALTH] = Health(clock)
        _intake_metrics(app, intake)
        # Every call of a provider reports its outcome to the health registry.
        stt = adapters.stt if adapters.stt is not None else _speech_to_text(settings)
        tts = adapters.tts if adapters.tts is not None else build_tts(settings.tts)
        services["stt"] = monitored(stt, health, "stt", "transcribe")
        services["tts"] = monitored(tts, health, "tts", "synthesize")
        tools = HttpTools(settings.tools) if settings.tools.http else None
        brain = monitored(adapters.brain or _brain(settings, tools), health, "llm", "reply")
        wake = asyncio.Event()  # the worker sleeps on it; the pipeline and recovery set it
        knowledge = app[keys.KNOWLEDGE] = KnowledgeBase(
            settings=settings.knowledge, repo=repo, embedder=_embedder(settings), events=events
        )
        services["retention"] = Retention(repo, clock, settings.storage.retention_days)
        services["memory"] = ContactMemory(
            settings=settings, repo=repo, events=events, brain=brain, clock=clock
        )
        pipeline = ReplyPipeline(
            settings=settings,
            repo=repo,
            events=events,
            accounts=accounts,
            brain=brain,
            stt=services["stt"],
            tts=services["tts"],
            clock=clock,
            directory=directory,
            wake=wake,
            knowledge=knowledge,
        )
        max_age = settings.telegram.max_catch_up_age
        pipeline.unstored_floor = lambda account, peer: intake.unstored_floor(
            account, peer, max_age
        )
        services["pipeline"] = pipeline
        pipeline.planner.modes = pipeline.executor.modes = safety.mode
        notifier = OwnerNotifier(repo, accounts)
        parts = ChannelParts(
            repo,
            events,
            clock,
            pipeline.behaviours,
            pipeline.styles,
            pipeline.generator,
            notifier,
            wake.set,
        )
        app[keys.HTTP_CHAT] = HttpChat(settings, parts)
        talkme = app[keys.TALKME] = TalkMe(settings, parts)
        sender = services["webhooks"] = WebhookSender(
            repo,
            settings.channels.external,
            clock,
            events,
            retry_base=settings.channels.external.retry_base,
        )
        external = app[keys.EXTERNAL] = ExternalChannel(settings, parts, wake_sender=sender.wake)
        api = app[keys.CONVERSATION_API] = ConversationApi(settings, parts)
        if external.enabled:
            pipeline.executor.channels[EXTERNAL] = external
            api.external = external
        app[keys.CHATS] = ChatPauses(
            repo,
            directory,
            events,
            clock,
            pipeline.holds,
            on_resume=pipeline.takeover.resume_tx,
            wake=wake.set,
        )
        services["drafts"] = app[keys.DRAFTS] = Drafts(
            repo, directory, events, clock, pipeline.behaviours, wake=wake
        )
        behaviour = app[keys.BEHAVIOUR] = BehaviourSettings(settings, repo, directory, events)
        services["autonomy"] = Autonomy(repo, directory, events, pipeline.behaviours, behaviour)
        if accounts.configured:
            app[keys.BOTS] = BotAdmin(
                repo, accounts, app[keys.ACCOUNT_ADMIN], twins, behaviour, events, clock
            )
        intake.on_new_message = pipeline.planner.on_new_message
        intake.on_owner_activity = pipeline.takeover.on_owner_activity
        intake.owner_pause = pipeline.takeover.pause_tx
        accounts.on_edited = pipeline.takeover.on_edited
        accounts.on_deleted = pipeline.takeover.on_deleted
        accounts.on_owner_edited = pipeline.takeover.on_owner_edited  # a correction
        intake.on_owner_read = pipeline.takeover.on_owner_read
        intake.on_owner_presence = pipeline.takeover.on_owner_presence
        accounts.on_owner_read = intake.owner_read  # held there while the database is out
        accounts.on_owner_presence = intake.owner_presence
        commands = services["commands"] = OwnerCommands(
            settings=settings,
            repo=repo,
            directory=directory,
            events=events,
            clock=clock,
            safety=safety,
            chats=app[keys.CHATS],
            accounts=accounts,
            behaviours=pipeline.behaviours,
        )
        accounts.on_owner_command = commands.on_owner_text  # `.twin off` typed on the phone
        drafts = services["drafts"]
        notes = drafts.notes  # where the owner sees a draft: a bot's buttons, Saved Messages
        notes.accounts = accounts
        if keys.BOTS in app:
            notes.bot_for = app[keys.BOTS].draft_bot
        drafts.modes = safety.mode  # an account held in draft/off never sends one on expiry
        commands.on_saved_reply = notes.on_saved_reply  # answered there with +, - or a text
        accounts.on_button = notes.on_button  # a bot's Send / Edit / Skip
        intake.bot_reply = notes.on_bot_message  # the owner's text for a draft, to a bot
        worker = services["worker"] = ReplyWorker(repo, pipeline, clock, wake=wake)
        pipeline.hand_off_to(worker)  # jobs due at once go straight to it (the fast path)
        from twin.api.ratelimit import RATE_LIMITS
        from twin.lifecycle_cluster import process_metrics, share_accounts

        turn = share_accounts(settings, adapters, accounts, worker, repo, clock, events)
        close_forwarding = None
        if turn is not None:  # one process makes the cluster's periodic passes
            from twin.lifecycle_cluster import ClusterChores, forward_requests

            close_forwarding = forward_requests(app, settings, accounts.ownership, repo)
            services["memory"].turn = services["retention"].turn = turn
            every = settings.cluster.dead_after_seconds
            me = accounts.ownership.process_id
            services["chores"] = ClusterChores(repo, me, worker.nudge, every, max(60.0, 3 * every))
        if turn is not None and RATE_LIMITS in app:
            app[RATE_LIMITS].share(repo)  # a client meets the same limits on every process
        if METRICS in app:
            process_metrics(app[METRICS].registry, accounts)
        recovery = OutageRecovery(
            settings=settings,
            repo=repo,
            events=events,
            clock=clock,
            wake=wake,
            metrics=RecoveryMetrics(app[METRICS].registry if METRICS in app else None),
        )
        services["recovery"] = recovery
        # The first success of a provider that was failing re-queues what its outage failed.
        health.on_recovered(recovery.on_recovered)
        sender.start()  # queued webhooks (also those a previous run left) are posted
        yield
        await sender.stop()
        await talkme.aclose()  # turns answered with the holding phrase and still running
        await notifier.drain()  # escalation notes on their way to Telegram
        await safety.stop()  # the governor's notes to the owner
        if tools is not None:
            await tools.aclose()
        await knowledge.aclose()
        await intake.aclose()
        if close_forwarding is not None:
            await close_forwarding()
        for name in ("stt", "tts"):
            if services.get(name) is not None:
                await services[name].aclose()
        if adapters.brain is None and brain is not None:
            await brain.llm.aclose()  # the provider SDKs' HTTP sessions (an injected brain is
            # not ours to close: tests hand the same one to a restarted app)

    return context


def _intake_metrics(app: web.Application, intake: Any) -> None:
    """Updates waiting in memory for the database, and those that did not fit, in /metrics."""
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

    from twin.api.metrics import METRICS

    class IntakeCollector:
        def collect(self) -> Any:
            yield GaugeMetricFamily(
                "twin_intake_held_updates",
                "Received updates held in memory until the database accepts them.",
                value=intake.held,
            )
            yield CounterMetricFamily(
                "twin_intake_dropped_updates",
                "Updates that did not fit in memory during a database outage (the sweep "
                "finds them).",
                value=intake.dropped,
            )

    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.registry.register(IntakeCollector())


def _telegram_context() -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        accounts = app.get(keys.ACCOUNTS)
        if accounts is None:
            yield
            return
        ownership = getattr(accounts, "ownership", None)  # tests may give their own accounts
        if ownership is not None:
            await ownership.start()  # joins the other processes (PostgreSQL)
        await accounts.start()
        yield
        # Disconnecting saves each session's update state: the next start catches up from it.
        await accounts.stop()
        if ownership is not None:
            await ownership.stop()  # the accounts' locks go: another process takes them
        log.info("telegram disconnected")

    return context
