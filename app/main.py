"""The application: ``create_app(settings)`` builds the Starlette app.

Its lifespan owns the long-lived resources (engine, sessionmaker, httpx client) and
hands them to handlers as one ``Runtime`` on ``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app import api, db, errors
from app.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """Everything a request handler may use, built once by the lifespan."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    schema_head: str


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = await asyncio.to_thread(db.resolve_database_url, settings)
    engine = db.create_engine(url)
    try:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            app.state.runtime = Runtime(
                settings=settings,
                engine=engine,
                sessionmaker=db.create_sessionmaker(engine),
                http=http,
                schema_head=await asyncio.to_thread(db.head_revision),
            )
            yield
    finally:
        await engine.dispose()


def create_app(settings: Settings) -> Starlette:
    app = Starlette(
        routes=api.routes,
        lifespan=_lifespan,
        exception_handlers=dict.fromkeys(errors.HANDLED, errors.handle_error),
    )
    app.state.settings = settings
    return app
