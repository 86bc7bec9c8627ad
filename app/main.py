"""The application: ``create_app(settings)`` builds the Starlette app.

``open_runtime`` builds the long-lived resources (engine, sessionmaker, one httpx client,
the ICE client, the wakers of the worker's two loops, the callback intake, the health
watches) and closes them; the app's lifespan and ``icehook worker`` both use it. Handlers
reach them as one ``Runtime`` on ``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware

from app import api, db, errors, logs, outbound
from app.ice import IceClient
from app.inbox import Intake
from app.lifecycle import Health, Shutdown
from app.queue import DELIVERIES, WORK, Waker
from app.settings import Settings
from app.worker import Worker


@dataclass(frozen=True)
class Runtime:
    """Everything a request handler or a worker may use, built once."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    ice: IceClient
    work_waker: Waker  # jobs to confirm: callbacks stored, a sweep due
    delivery_waker: Waker  # webhooks to send
    intake: Intake
    health: Health  # what /readyz reports as wedged
    schema_head: str


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    url = await asyncio.to_thread(db.resolve_database_url, settings)
    settings = dataclasses.replace(settings, database_url=url)
    timeout = settings.database_timeout_seconds
    engine = db.create_engine(url, timeout=timeout)
    sessionmaker = db.create_sessionmaker(engine)
    work_waker = Waker(WORK)
    health = Health()
    # A write may be tried twice (the second on a new connection), each within the timeout.
    intake = Intake(engine, work_waker, timeout, health.watch("callback intake", 2 * timeout + 1))
    try:
        async with outbound.client(max_connections=64, trust_env=True) as http:
            yield Runtime(
                settings=settings,
                engine=engine,
                sessionmaker=sessionmaker,
                http=http,
                ice=IceClient(http, settings),
                work_waker=work_waker,
                delivery_waker=Waker(DELIVERIES),
                intake=intake,
                health=health,
                schema_head=await asyncio.to_thread(db.head_revision),
            )
    finally:
        await intake.close()
        await db.dispose(engine, timeout)


def create_app(
    settings: Settings, *, workers: bool = False, shutdown: Shutdown | None = None
) -> Starlette:
    """The HTTP API; with ``workers`` it also runs the background worker in its lifespan,
    which starts finishing its work when ``shutdown`` begins (the process's first signal)
    and is cancelled at its deadline."""
    stopping = shutdown or Shutdown(settings.shutdown_timeout_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(settings) as rt:
            app.state.runtime = rt
            if not workers:
                yield
                return
            worker = Worker(rt)
            task = asyncio.create_task(worker.run())
            stop_on_signal = asyncio.create_task(_stop_when(stopping.begun, worker))
            try:
                yield
            finally:
                stop_on_signal.cancel()
                worker.stop()
                await stopping.finish(task, "the worker")

    app = Starlette(
        routes=api.routes,
        middleware=[Middleware(logs.RequestIds), Middleware(errors.Unhandled)],
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(errors.HANDLED, errors.handle_error),
    )
    app.router.redirect_slashes = False  # see api.routes
    return app


async def _stop_when(begun: asyncio.Event, worker: Worker) -> None:
    """Let the worker finish what it holds while the HTTP server drains its requests."""
    await begun.wait()
    worker.stop()
