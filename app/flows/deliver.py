"""Sending webhooks: a worker's delivery loop.

The ``Deliverer`` keeps up to ``ICEHOOK_DELIVERY_CONCURRENCY`` requests in flight. Each
delivery is claimed with a lease (``store.deliveries.claim``), sent outside any transaction
(``webhooks.sender.send``, within its deadline), judged (``core.delivery.verdict``) and
recorded in a group commit with the others that finished meanwhile.

The slots are shared fairly: no subscription holds more than half of them
(``share_of``), nor more than its own limits allow across all workers, and each claim
gives every subscription with due deliveries its turn before any gets a second one. So a
subscriber that answers slowly, or not at all within the deadline, keeps only its share
busy, and the others' webhooks go out beside it. (docs/webhooks.md, "Isolation")
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from opentelemetry.trace import StatusCode
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import outbound
from app.core.delivery import Attempt, DisablingRule, verdict
from app.core.health import Watch
from app.flows.leasing import LeaseKeeper
from app.flows.reporting import log_disabled, log_failure
from app.settings import Settings
from app.store import deliveries
from app.store.batching import GroupCommit
from app.store.notify import Waker
from app.telemetry import metrics
from app.telemetry.tracing import OFF, Tracing, continuing
from app.webhooks.sender import send

logger = logging.getLogger(__name__)

MAX_RECORDED_TOGETHER = 256  # finished deliveries recorded in one transaction
# While deliveries keep coming, claims start at most this often (each takes what became due
# meanwhile); a webhook waits for the next claim.
CLAIM_GAP_SECONDS = 0.005
ERROR_PAUSE_SECONDS = 2.0


def disabling_rule(settings: Settings) -> DisablingRule:
    """When icehook disables a subscription, and how long its events queue after, as the
    settings say."""
    return DisablingRule(
        after_seconds=settings.webhook_disable_after_seconds,
        queue_seconds=settings.webhook_disabled_queue_seconds,
    )


def share_of(concurrency: int) -> int:
    """The most of a worker's ``concurrency`` slots one subscription may hold: half, so
    that a slow subscriber can never take the slots another one's webhooks need."""
    return max(1, concurrency // 2)


class Deliverer:
    """Uses: the database, the delivery waker (NOTIFY on ``DELIVERIES``, and its own wake-ups
    when a slot frees), a watch over its claims, the process's leases (kept alive while a
    webhook is sent and recorded), and from the settings the concurrency,
    the request deadline, the retry schedule, the disabling rule, the allowed networks and
    the database's timeout, and tracing (a span for each webhook sent, continuing the
    trace of the work that recorded its event, and its client's request spans)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        waker: Waker,
        watch: Watch,
        leases: LeaseKeeper,
        settings: Settings,
        rng: random.Random | None = None,
        tracing: Tracing = OFF,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.waker = waker
        self.watch = watch
        self.leases = leases
        self.settings = settings
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self.tracer = tracing.tracer
        # No proxy: it would reach addresses that the checks never saw.
        self.client = outbound.client(
            max_connections=settings.delivery_concurrency, trust_env=False
        )
        tracing.instrument_client(self.client)
        self._records = GroupCommit(self._record, MAX_RECORDED_TOGETHER)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._held: Counter[uuid.UUID] = Counter()  # requests in flight, by subscription
        self._disabling = disabling_rule(settings)

    async def run(self, stopping: Callable[[], bool], poll_seconds: float) -> None:
        """Claim and send until ``stopping()``; sleep while nothing is due or every slot is
        taken (a finished delivery, NOTIFY or the poll interval wakes it)."""
        settings = self.settings
        assert settings.database_url is not None
        listener = asyncio.create_task(
            self.waker.listen(settings.database_url, stopping, settings.database_timeout_seconds)
        )
        loop = asyncio.get_running_loop()
        try:
            while not stopping():
                started = loop.time()
                try:
                    with self.watch.busy():
                        await self.run_once()
                except Exception:
                    log_failure(logger, "claiming deliveries failed; trying again shortly")
                    await asyncio.sleep(ERROR_PAUSE_SECONDS)
                    continue
                await self.waker.wait(poll_seconds)
                # Claims at most every CLAIM_GAP_SECONDS, each taking what became due meanwhile.
                await asyncio.sleep(max(0.0, started + CLAIM_GAP_SECONDS - loop.time()))
        finally:
            await self.close()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def run_once(self) -> int:
        """Claim what is due (as many as there are free slots) and start sending it."""
        free = self.settings.delivery_concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        async with self.sessionmaker.begin() as session:
            claimed = await deliveries.claim(
                session,
                limit=free,
                lease_seconds=self.leases.seconds,
                share=share_of(self.settings.delivery_concurrency),
                held=self._held,  # _release drops a subscription at zero
            )
        for delivery in claimed:
            subscription_id = delivery["subscription_id"]
            self._held[subscription_id] += 1
            task = asyncio.create_task(self._deliver(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(functools.partial(self._release, subscription_id))
        if len(claimed) == free:
            self.waker.wake()  # more may be due
        return len(claimed)

    def _release(self, subscription_id: uuid.UUID, _: object) -> None:
        self._held[subscription_id] -= 1
        if self._held[subscription_id] <= 0:
            del self._held[subscription_id]

    async def _deliver(self, delivery: RowMapping) -> None:
        try:
            with self.leases.holding(deliveries=[delivery["id"]]):
                attempt = await self._send(delivery)
                metrics.DELIVERY_ATTEMPTS.labels(
                    "delivered" if attempt.delivered else "failed"
                ).inc()
                if attempt.latency_ms is not None:
                    metrics.DELIVERY_SECONDS.observe(attempt.latency_ms / 1000)
                await self._records.submit(
                    (delivery, attempt), within=2 * self.settings.database_timeout_seconds
                )
        except Exception:  # the lease expires and the delivery is tried again
            log_failure(logger, "delivery %s failed to complete", delivery["id"])
        finally:
            self.waker.wake()  # a slot is free, and the job's next event may be due

    async def _send(self, delivery: RowMapping) -> Attempt:
        attributes = {
            "icehook.delivery_id": delivery["id"],
            "icehook.subscription_id": str(delivery["subscription_id"]),
            "icehook.event_type": delivery["event_type"],
            "icehook.attempt": delivery["attempts"] + 1,
        }
        causes = [delivery["traceparent"]]
        with continuing(self.tracer, "send webhook", causes, attributes=attributes) as span:
            attempt = await send(self.client, delivery, self.settings, datetime.now(UTC))
            span.set_attribute("icehook.delivered", attempt.delivered)
            if attempt.error is not None:
                span.set_status(StatusCode.ERROR, attempt.error)
            elif not attempt.delivered:
                span.set_status(StatusCode.ERROR, f"answered {attempt.status_code}")
            return attempt

    async def _record(self, finished: Sequence[tuple[RowMapping, Attempt]]) -> list[None]:
        schedule = self.settings.delivery_retry_schedule
        judged = [
            (delivery, attempt, verdict(attempt, delivery["attempts"], schedule, self.rng))
            for delivery, attempt in finished
        ]
        async with self.sessionmaker.begin() as session:
            disabled = await deliveries.record(session, judged, self._disabling)
        for subscription in disabled:
            log_disabled(subscription)
        return [None] * len(finished)

    async def close(self) -> None:
        """Let the requests in flight finish and be recorded, then close the client. (When
        this is cancelled, so are they: their leases expire and they are sent again.)"""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self.client.aclose()
