"""Posting the outbox of webhooks (webhook_deliveries) to their receivers.

A delivery is claimed with a lease (its next attempt time moves past the attempt's timeout, so
a process that dies mid-post leaves it due again, and a second process never posts it at the
same time), POSTed as JSON with its idempotency key (`Idempotency-Key`, the same on every
attempt: a receiver that got it before the crash can tell) and its signature
(twin.domain.webhooks), and finished: `delivered` on a 2xx; else tried again with exponential
backoff and jitter until `max_age`, then `dead` with the last error (`POST
/webhooks/deliveries/{id}/redeliver` queues it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from datetime import timedelta
from typing import Any

import aiohttp

from twin.background import woken
from twin.config_channels import ExternalChannelSettings
from twin.db.records import DeliveryRecord
from twin.domain.webhooks import SIGNATURE_HEADER, retry_delay, sign
from twin.ports import Clock, Store
from twin.services.events import EventLog

__all__ = ["WebhookSender"]

log = logging.getLogger("twin.channels.webhooks")

BATCH = 50
IDLE = 60.0  # seconds: the longest sleep with nothing due (a missed wake-up costs this)


class WebhookSender:
    def __init__(
        self,
        repo: Store,
        settings: ExternalChannelSettings,
        clock: Clock,
        events: EventLog,
        *,
        rng: random.Random | None = None,
        retry_base: float = 1.0,
    ) -> None:
        self._repo = repo
        self._settings = settings
        self._clock = clock
        self._events = events
        self._rng = rng or random.Random()
        self._retry_base = retry_base
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0  # deliveries this process posted with a 2xx (bench, metrics)

    def wake(self) -> None:
        """Something was queued: look now."""
        self._wake.set()

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout),
            headers={"User-Agent": "twin-webhooks"},
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                sent = await self.send_due()
            except Exception as exc:  # the database is away: try again later
                log.warning("webhook deliveries: %s", exc)
                sent = 0
            if sent:
                continue  # a full batch may mean more are due
            await self._sleep()

    async def _sleep(self) -> None:
        delay = IDLE
        with contextlib.suppress(Exception):
            due = await self._repo.next_delivery_at()
            if due is not None:
                delay = min(IDLE, max(0.0, (due - self._clock.now()).total_seconds()))
        await woken(self._wake, delay)

    async def send_due(self) -> int:
        """Post every delivery due now (concurrently); how many were attempted."""
        # an attempt's longest time, and a margin: past it, a claim whose process died is due
        timeout = self._settings.timeout
        lease = timedelta(seconds=timeout + min(5.0, timeout))
        due = await self._repo.claim_due_deliveries(self._clock.now(), lease, BATCH)
        if due:
            await asyncio.gather(*(self._attempt(delivery) for delivery in due))
        return len(due)

    async def _attempt(self, delivery: DeliveryRecord) -> None:
        assert self._session is not None
        secret = self._settings.webhook_secret
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.key,
            "X-Twin-Delivery": str(delivery.id),
            "X-Twin-Event": str(delivery.payload.get("wh_type", "")),
        }
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret.get_secret_value(), body, time.time())
        status: int | None = None
        try:
            async with self._session.post(delivery.url, data=body, headers=headers) as response:
                status = response.status
                await response.read()
            if 200 <= status < 300:
                await self._repo.delivery_done(delivery.id, self._clock.now(), status)
                self.delivered += 1
                await self._emit("webhook.delivered", delivery, delivery.attempts + 1)
                return
            error = f"HTTP {status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self._failed(delivery, error, status)

    async def _failed(self, delivery: DeliveryRecord, error: str, status: int | None) -> None:
        now = self._clock.now()
        attempts = delivery.attempts + 1
        later = now + timedelta(seconds=retry_delay(attempts, self._rng, self._retry_base))
        age = (later - delivery.created_at).total_seconds()
        if age > self._settings.max_age:  # the event's line says so (WARNING)
            await self._repo.delivery_failed(delivery.id, error, status, None)
            await self._emit("webhook.dead", delivery, attempts, error=error)
            return
        await self._repo.delivery_failed(delivery.id, error, status, later)
        delay = round((later - now).total_seconds(), 3)
        await self._emit("webhook.retry", delivery, attempts, error=error, delay=delay)

    async def _emit(self, type_: str, delivery: DeliveryRecord, attempts: int, **data: Any) -> None:
        await self._events.emit(
            type_,
            {
                "delivery": delivery.id,
                "wh_type": delivery.payload.get("wh_type"),
                "attempts": attempts,
                **data,
            },
            account_id=delivery.account_id,
            chat_id=delivery.chat_id,
        )
