"""The composition root: the one place that builds icehook's parts from its settings and
puts them together. Nothing else imports across the layers to assemble anything.

``Parts`` builds, for one process, the engine and sessionmaker, the outbound HTTP client,
the ICE client, the wakers, the health watches, the intake, the submitter and the
confirmer, and (``worker``) the background worker, each given the tracing it makes spans
with (``telemetry.tracing``: off unless the ``OTEL_*`` variables turn it on).
``create_app`` makes the HTTP app of ``serve`` from them, its lifespan starting and
stopping the worker and closing the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.types import Lifespan

from app import outbound
from app.core.health import Health
from app.flows.budget import SharedBudget
from app.flows.confirm import Confirmer
from app.flows.deliver import Deliverer
from app.flows.gauges import DatabaseGauges
from app.flows.housekeeping import Housekeeper
from app.flows.intake import Intake
from app.flows.judge import CallbackJudge
from app.flows.leasing import LeaseKeeper
from app.flows.lifecycle import Shutdown
from app.flows.retention import Purger
from app.flows.submit import Submitter
from app.flows.sweep import Sweeper
from app.flows.worker import POLL_SECONDS, Worker
from app.http.app import create_health_app, create_http_app
from app.http.console.routes import ConsoleRoutes
from app.http.routes.callbacks import CallbackRoutes
from app.http.routes.deliveries import DeliveryRoutes
from app.http.routes.events import EventRoutes
from app.http.routes.jobs import JobRoutes
from app.http.routes.service import ServiceRoutes
from app.http.routes.subscriptions import SubscriptionRoutes
from app.ice.client import IceClient, RateLimiter
from app.settings import Settings
from app.store import schema
from app.store.engine import create_engine, create_sessionmaker, dispose
from app.store.notify import DELIVERIES, WORK, Waker
from app.telemetry.tracing import OFF, Tracing

logger = logging.getLogger(__name__)


class Parts:
    """What one process builds once from ``settings`` (whose database URL is resolved),
    traced as ``tracing`` says (its owner closes it, after these parts)."""

    def __init__(self, settings: Settings, tracing: Tracing = OFF) -> None:
        if settings.database_url is None:
            raise ValueError("resolve the database URL first (store.embedded)")
        self.settings = settings
        self.tracing = tracing
        self.database_url = settings.database_url
        self.timeout = settings.database_timeout_seconds
        pooled = settings.database_pooled
        self.engine = create_engine(self.database_url, timeout=self.timeout, pooled=pooled)
        tracing.instrument_engine(self.engine)
        self.sessionmaker = create_sessionmaker(self.engine)
        self.health = Health()
        # Jobs to confirm (callbacks stored, a sweep due) and webhooks to send.
        self.work_waker = Waker(WORK, listening=not pooled)
        self.delivery_waker = Waker(DELIVERIES, listening=not pooled)
        if pooled:
            logger.info(
                "behind a transaction pooler: workers poll every %g s, not woken by NOTIFY",
                POLL_SECONDS,
            )
        self.http = outbound.client(max_connections=64, trust_env=True)
        tracing.instrument_client(self.http)
        self.ice = IceClient(
            self.http,
            settings,
            submit_pace=self._shared_budget("ice-submit", settings.ice_submit_qps),
            read_pace=self._shared_budget("ice-read", settings.ice_read_qps),
            tracer=tracing.tracer,
        )
        # A write may be tried twice (the second on a new connection), each within the timeout.
        self.intake = Intake(
            self.engine,
            self.work_waker,
            self.timeout,
            self.health.watch("callback intake", 2 * self.timeout + 1),
            public_url=settings.public_url,
            auth_keys=settings.callback_auth_keys,
            tracer=tracing.tracer,
        )
        self.submitter = Submitter(self.sessionmaker, self.ice, settings)
        self.leases = LeaseKeeper(self.sessionmaker)  # this process's, renewed while held
        logger.info("leases of this process are held as owner=%s", self.leases.owner)
        self.confirmer = Confirmer(
            self.sessionmaker,
            self.ice,
            self.submitter,
            self.leases,
            settings,
            tracer=tracing.tracer,
        )

    def _shared_budget(self, name: str, rate: float) -> SharedBudget:
        fallback = RateLimiter(rate, sleep=asyncio.sleep)
        return SharedBudget(self.engine, name, rate, fallback=fallback)

    def worker(self, poll_seconds: float = POLL_SECONDS) -> Worker:
        """The background worker: judging callbacks and sweeping, and delivering webhooks."""
        settings = self.settings
        passes = self.health.watch("worker pass", self.confirmer.longest_seconds + poll_seconds)
        sweeper = Sweeper(
            self.sessionmaker,
            self.ice,
            self.leases,
            self.confirmer,
            RateLimiter(settings.sweep_qps, sleep=asyncio.sleep),
            progress=passes,
        )
        # A claim is one short transaction: its statements and commit each within the timeout.
        claims = self.health.watch("webhook claims", 3 * self.timeout)
        deliverer = Deliverer(
            self.sessionmaker,
            self.delivery_waker,
            claims,
            self.leases,
            settings,
            tracing=self.tracing,
        )
        return Worker(
            CallbackJudge(self.sessionmaker, self.leases, self.confirmer),
            sweeper,
            deliverer,
            Housekeeper(self.sessionmaker, create_purger(settings, self.sessionmaker)),
            self.work_waker,
            passes,
            database_url=self.database_url,
            statement_seconds=self.timeout,
            poll_seconds=poll_seconds,
        )

    async def close(self) -> None:
        """Cancel sends still waiting for ICE, return the intake's connection, close the
        HTTP client and the pool."""
        await self.submitter.close()
        await self.leases.close()
        await self.intake.close()
        await self.http.aclose()
        await dispose(self.engine, self.timeout)


def create_app(
    settings: Settings,
    *,
    workers: bool = False,
    shutdown: Shutdown | None = None,
    tracing: Tracing = OFF,
) -> Starlette:
    """The HTTP API; with ``workers`` it also runs the background worker in its lifespan,
    which starts finishing its work when ``shutdown`` begins (the process's first signal)
    and is cancelled at its deadline. Traced as ``tracing`` says."""
    parts = Parts(settings, tracing)
    gauges = DatabaseGauges(parts.sessionmaker)
    stopping = shutdown or Shutdown(settings.shutdown_timeout_seconds)
    lifespan = _lifespan(parts, stopping, workers, gauges)

    job_routes = JobRoutes(parts.sessionmaker, parts.submitter, parts.leases, parts.confirmer)
    subscription_routes = SubscriptionRoutes(
        parts.sessionmaker,
        settings.allowed_webhook_nets,
        timedelta(seconds=settings.webhook_secret_overlap_seconds),
        settings.webhook_disabled_queue_seconds,
    )
    delivery_routes = DeliveryRoutes(parts.sessionmaker)
    return create_http_app(
        service=ServiceRoutes(
            parts.engine, parts.health, schema.head_revision(), database_gauges=gauges
        ),
        callbacks=CallbackRoutes(parts.intake, settings.callback_max_bytes, parts.sessionmaker),
        jobs=job_routes,
        subscriptions=subscription_routes,
        deliveries=delivery_routes,
        events=EventRoutes(parts.sessionmaker),
        console=ConsoleRoutes(
            parts.sessionmaker, settings.api_keys, job_routes, subscription_routes, delivery_routes
        ),
        api_keys=settings.api_keys,
        lifespan=lifespan,
        tracing=tracing,
    )


def create_worker_app(settings: Settings, shutdown: Shutdown, tracing: Tracing = OFF) -> Starlette:
    """``icehook worker --port``: the background worker, run in the lifespan of an app that
    serves only its health (``/healthz``, ``/readyz``) and its own metrics (``/metrics``,
    behind the API keys; the gauges read from the database are left to ``serve``, so that
    the metrics of every process add up)."""
    parts = Parts(settings, tracing)
    service = ServiceRoutes(
        parts.engine, parts.health, schema.head_revision(), database_gauges=None
    )
    return create_health_app(
        service, settings.api_keys, lifespan=_lifespan(parts, shutdown, True, None)
    )


def _lifespan(
    parts: Parts, stopping: Shutdown, workers: bool, gauges: DatabaseGauges | None
) -> Lifespan[Starlette]:
    """With ``workers``, the background worker runs while the app does; it starts finishing
    its work when ``stopping`` begins and is cancelled at its deadline. ``gauges`` are
    kept current meanwhile. The parts are closed at the end."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gauges_stopped = asyncio.Event()
        refreshing = asyncio.create_task(gauges.run(gauges_stopped)) if gauges else None
        try:
            if not workers:
                yield
                return
            worker = parts.worker()
            task = asyncio.create_task(worker.run())
            stop_on_signal = asyncio.create_task(_stop_when(stopping.begun, worker))
            try:
                yield
            finally:
                stop_on_signal.cancel()
                worker.stop()
                await stopping.finish(task, "the worker")
        finally:
            gauges_stopped.set()
            if refreshing is not None:
                await refreshing  # at most one refresh, within the database's deadline
            await parts.close()

    return lifespan


def create_purger(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> Purger:
    """The purger of a worker and of ``icehook purge``: the configured retention windows."""
    return Purger(
        sessionmaker,
        retention_seconds=settings.retention_seconds,
        history_seconds=settings.history_retention_seconds,
    )


async def run_worker(settings: Settings, shutdown: Shutdown, tracing: Tracing = OFF) -> None:
    """``icehook worker``: the background worker alone, until ``shutdown`` begins; then it
    finishes what it holds, within the shutdown's deadline. Traced as ``tracing`` says."""
    parts = Parts(settings, tracing)
    try:
        worker = parts.worker()
        task = asyncio.create_task(worker.run())
        signalled = asyncio.ensure_future(shutdown.begun.wait())
        await asyncio.wait([task, signalled], return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        worker.stop()
        await shutdown.finish(task, "the worker")
        if task.done() and not task.cancelled():
            task.result()  # a worker that failed says why
    finally:
        await parts.close()


async def _stop_when(begun: asyncio.Event, worker: Worker) -> None:
    """Let the worker finish what it holds while the HTTP server drains its requests."""
    await begun.wait()
    worker.stop()
