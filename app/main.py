"""The application: ``create_app(settings)`` builds the Starlette app.

``open_runtime`` builds the long-lived resources (engine, sessionmaker, one httpx client,
the ICE client, the wakers of the worker's two loops, the callback intake) and closes
them; the app's lifespan and ``icehook worker`` both use it. Handlers reach them as one
``Runtime`` on ``app.state.runtime``.
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
    schema_head: str


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    url = await asyncio.to_thread(db.resolve_database_url, settings)
    settings = dataclasses.replace(settings, database_url=url)
    engine = db.create_engine(url)
    sessionmaker = db.create_sessionmaker(engine)
    work_waker = Waker(WORK)
    intake = Intake(engine, work_waker)
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
                schema_head=await asyncio.to_thread(db.head_revision),
            )
    finally:
        await intake.close()
        await engine.dispose()


def create_app(settings: Settings, *, workers: bool = False) -> Starlette:
    """The HTTP API; with ``workers`` it also runs the background worker in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(settings) as rt:
            app.state.runtime = rt
            worker = Worker(rt) if workers else None
            task = asyncio.create_task(worker.run()) if worker else None
            try:
                yield
            finally:
                if worker and task:
                    worker.stop()
                    await task

    return Starlette(
        routes=api.routes,
        middleware=[Middleware(logs.RequestIds), Middleware(errors.Unhandled)],
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(errors.HANDLED, errors.handle_error),
    )
